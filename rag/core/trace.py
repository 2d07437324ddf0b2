"""The trace of one question: what was searched, how every candidate scored, what the answerer did, timings.

One typed model, filled in by the stages (search, rerank, context, answer) and read by every front end: the
CLI's `--json` and `--trace` table, the HTTP API's `include_trace`, the chat UI's trace panel. Each model is
open to added fields (`extra="allow"`), so a stage or a plug-in may record more without changing this file;
the JSON shape is `model_dump(mode="json", exclude_unset=True)`: a part a stage did not fill is left out, as
in the dicts the trace was before it was typed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=False)


class Rewrite(_Open):
    """The standalone question; each rewrite step (condense, multi_query, hyde) adds a note under its name."""

    standalone: str = ""

    @property
    def notes(self) -> dict[str, Any]:
        """The rewrite steps' notes, by step name (everything but `standalone`)."""
        return dict(self.model_extra or {})


class QueryStep(_Open):
    """One searched query (or a HyDE vector) and each retriever's top candidates as [chunk_id, score]."""

    query: str
    dense: list[tuple[str, float]] = Field(default_factory=list)
    bm25: list[tuple[str, float]] = Field(default_factory=list)


class Candidate(_Open):
    """A chunk of the final ranking with each stage's score and 1-based rank."""

    chunk_id: str
    source: str
    page: int | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    ranks: dict[str, int] = Field(default_factory=dict)


class RerankInfo(_Open):
    kind: str
    failed_windows: int = 0
    windows: int | None = None


class ContextInfo(_Open):
    """What the context assembler kept: passages, their tokens, and chunks cut for low relevance."""

    cut_by_relevance: int = 0
    passages: int = 0
    context_tokens: int = 0


class GeneratorInfo(_Open):
    """Who wrote the answer (`extractive`, `llm` or `none`) and its own notes (model, evidence, reason, ...)."""

    answerer: str
    model: str | None = None  # llm: the chat model's name
    reason: str | None = None  # none: why nothing was generated
    evidence: str | None = None  # extractive: strong or weak
    top_sentences: list[dict[str, Any]] | None = None  # extractive: the best-scored sentences


class DroppedCitation(_Open):
    """A citation marker the checker removed, the sentence it was on, and why."""

    marker: int
    sentence: str = ""
    reason: str = ""


class Trace(_Open):
    """Everything `rag ask --trace` shows; see the module docstring for how it is filled and serialised."""

    rewrite: Rewrite | None = None
    queries: list[str] = Field(default_factory=list)
    filters: dict[str, list[str]] = Field(default_factory=dict)
    filters_match_nothing: bool = False
    per_query: list[QueryStep] = Field(default_factory=list)
    rerank: RerankInfo | None = None
    context: ContextInfo | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    retrieval_ms: float | None = None
    generator: GeneratorInfo | None = None
    generation_ms: float | None = None
    citations_dropped: list[DroppedCitation] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape: only what the stages filled in."""
        return self.model_dump(mode="json", exclude_unset=True)
