"""One question as every entry point asks it: the text, the conversation so far, filters, whose access, top_k.

The CLI, the HTTP API, the chat UI and the Python API build a `Query` and hand it to `RagPipeline.retrieve`,
`ask` or `stream` (which also take the question as a string plus the same fields as keywords).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypedDict

from rag.core.access import Access
from rag.core.chat import Message
from rag.retrieve.filters import Filters

LOCAL = Access.unrestricted()  # the local CLI and Python API read the index files directly, so everything


class QueryOptions(TypedDict, total=False):
    """The keyword form of a Query's fields besides the question (for `rag.ask("...", top_k=4)`)."""

    history: list[Message] | None
    filters: Filters
    access: Access
    top_k: int | None


@dataclass(frozen=True, slots=True)
class Query:
    """`access`: whose permissions apply (the server passes the API key's; the local CLI and Python API read
    everything). `top_k`: chunks kept for context (None: retrieval.top_k). `history`: earlier turns, oldest
    first, that a follow-up question is condensed with."""

    question: str
    history: list[Message] | None = None
    filters: Filters = field(default_factory=Filters)
    access: Access = LOCAL
    top_k: int | None = None

    @classmethod
    def of(cls, query: "Query | str", options: QueryOptions) -> "Query":
        """`query` as a Query, with `options` (keyword arguments of ask/stream/retrieve) applied."""
        base = query if isinstance(query, Query) else cls(query)
        return replace(base, **options) if options else base
