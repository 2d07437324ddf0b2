"""Request and response bodies of the HTTP API (they make the OpenAPI document at /openapi.json).

Booleans and integers are strict: a value of another JSON type than the schema's (`"recursive": 0`, `"top_k": "5"`)
is a 422, as the schema says, rather than coerced."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from rag.core.access import GROUP_NAME
from rag.core.file_types import FILE_TYPES
# The result shapes are shared with `rag ask --json` and the UI, so they are defined once, below the server:
# AnswerOut (with its typed Trace) is the body of /v1/ask, RankedChunk a hit of /v1/retrieve.
from rag.core.results import AnswerOut, RankedChunk  # noqa: F401 - AnswerOut is re-exported for the API's readers


# a path on the server or a source's key: never blank (a blank path would mean the server's current folder)
PathText = Annotated[str, Field(min_length=1, pattern=r"\S")]
def _whole_float(value: object) -> object:
    """JSON Schema counts 5.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


PositiveCount = Annotated[StrictInt, Field(ge=1), BeforeValidator(_whole_float)]  # in this order: `minimum` in the schema
GroupName = Annotated[str, Field(pattern=GROUP_NAME.pattern, description="Letters, digits and _ . : - (at most 64 characters).")]


class FiltersIn(BaseModel):
    """Narrow the search; they can never widen what the key may read. Filters that keep no document you may read
    search nothing and say so: `/v1/ask` answers that in words (`answered: false`), `/v1/retrieve` in `notice`."""

    model_config = ConfigDict(extra="forbid")
    sources: list[str] = Field(default_factory=list, max_length=50, description="Path globs as given at ingest, e.g. data/*.pdf.")
    file_types: list[str] = Field(
        default_factory=list, max_length=10,
        description=f"Sources of these file types: {', '.join(FILE_TYPES)}, or a plug-in loader's type. An unknown type is a 422 that lists the types.",
    )
    tags: list[str] = Field(
        default_factory=list, max_length=50,
        description="Sources with any of these tags. A tag no document you may read carries is a 422 that lists the tags you may use.",
    )


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, pattern=r"\S", description="The question (limit: serve.max_question_chars).")
    history: list[Turn] = Field(default_factory=list, max_length=50, description="Earlier turns, oldest first, for follow-ups.")
    filters: FiltersIn = Field(default_factory=FiltersIn)
    top_k: PositiveCount | None = Field(None, description="Chunks given to the answerer (default retrieval.top_k; limit serve.max_top_k).")
    include_passages: StrictBool = Field(True, description="Include `passages`: the numbered context the answerer read, with their text.")
    include_trace: StrictBool = Field(
        False, description="Include `trace`: queries searched, every candidate's scores and ranks, timings (several KB; `rag ask --json` has it)."
    )


class RetrieveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, pattern=r"\S", description="The search text (limit: serve.max_question_chars).")
    top_k: PositiveCount = Field(8, description="Ranked chunks to return (limit serve.max_top_k).")
    filters: FiltersIn = Field(default_factory=FiltersIn)


class RetrieveOut(BaseModel):
    query: str
    results: list[RankedChunk]
    notice: str | None = Field(None, description="Set when the filters keep no document you may read: nothing was searched.")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ContentMessage(_Message):
    """A system, developer, user or tool message: its `content` is required, as in the OpenAI API."""

    role: Literal["system", "developer", "user", "tool"]
    content: str | list[ContentPart]


class AssistantMessage(_Message):
    """An earlier answer; its `content` may be null (an OpenAI assistant turn that only called tools)."""

    role: Literal["assistant"]


ChatMessage = Annotated[ContentMessage | AssistantMessage, Field(discriminator="role")]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool = Field(False, description="Send a last chunk with `usage` (and no choices) before [DONE], as OpenAI does.")


class ChatOptions(BaseModel):
    """What `rag` clients (the chat UI in API mode) may ask of a chat completion beyond OpenAI's fields."""

    model_config = ConfigDict(extra="forbid")
    top_k: PositiveCount | None = Field(None, description="Chunks given to the answerer (default retrieval.top_k; limit serve.max_top_k).")
    include_trace: StrictBool = Field(
        False, description="Make the `rag` field of the reply (the last chunk when streamed) the whole answer as /v1/ask returns it "
        "with include_trace: question, answer, short_answer, answered, citations, passages and trace.",
    )


class ChatIn(BaseModel):
    """OpenAI chat completions. The last user message is the question; earlier turns are its history.
    Sampling fields (temperature, ...) are accepted and ignored: the server's config decides. A conversation
    whose last user or assistant turn is not a user message with text is a 422: there is no question."""

    model_config = ConfigDict(extra="allow")
    model: str = "rag"
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    rag: ChatOptions | None = Field(None, description="Extensions of this server (OpenAI clients send them in `extra_body`).")



class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1)
    title: str = ""
    groups: list[GroupName] | None = Field(None, description="Who may read it; default: the request's groups.")


class IngestIn(BaseModel):
    """Server-side paths, documents sent in the request (kept as <index>/uploads/<name>.jsonl), or both: at least one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"anyOf": [{"required": ["paths"], "properties": {"paths": {"minItems": 1}}},
                                     {"required": ["documents"], "properties": {"documents": {"minItems": 1}}}]},
    )
    paths: list[PathText] = Field(default_factory=list, max_length=1000, description="Files or folders on the server.")
    documents: list[DocumentIn] = Field(default_factory=list)
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Upload name (documents only).")
    groups: list[GroupName] | None = Field(None, description="Reader groups; [] = every key; omitted = as `rag ingest` without --groups.")
    tags: list[str] | None = None


class RemoveIn(BaseModel):
    """Sources to remove, each named exactly; a folder only with `recursive`, and never one that holds every source."""

    model_config = ConfigDict(extra="forbid")
    paths: list[PathText] = Field(
        min_length=1, max_length=1000,
        description="Sources as GET /v1/sources lists them (`path` or `display_path`). A path that names none is reported in `failed`.",
    )
    recursive: StrictBool = Field(
        False,
        description="Also take every source below a folder path. A removal whose folders would take every source of the "
        "index is a 422 (name the sources one by one, or run `rag remove --all` on the server).",
    )


class ErrorOut(BaseModel):
    error: dict[str, Any] = Field(description="{message, type, code}, as the OpenAI API does.")
