"""Chat messages and the chat model contract, shared by query rewriting, LLM reranking and answer writing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class ChatModel(Protocol):
    """One job: messages in, text out (whole, or as a stream of deltas).

    `name` identifies the model in traces (e.g. "gpt-4o-mini@http://localhost:8000/v1"). Errors a user can fix
    (unreachable endpoint, bad key, missing model file) are raised as `rag.errors.RagError` with a hint.
    """

    name: str

    def complete(self, messages: list[Message], max_tokens: int | None = None) -> str: ...

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]: ...
