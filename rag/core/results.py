"""The JSON shapes of an answer and of a ranked chunk: one definition for `rag ask --json`, the HTTP API and the
chat UI, so the three cannot drift apart. Built from the library's own types with `of(...)`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rag.core.trace import Trace
from rag.types import Answer, Citation, Passage, ScoredChunk, ShortAnswer


class CitationOut(BaseModel):
    """A checked citation: `text` is `extracted_text[start:end]` of `source`."""

    marker: int
    source: str
    page: int | None
    start: int
    end: int
    text: str

    @classmethod
    def of(cls, citation: Citation) -> "CitationOut":
        return cls(marker=citation.marker, source=citation.source, page=citation.page, start=citation.start, end=citation.end, text=citation.text)


class PassageOut(BaseModel):
    """A numbered passage the answerer read (one contiguous span of one document)."""

    number: int
    source: str
    doc_id: str
    start: int
    end: int
    text: str
    page: int | None
    heading_path: list[str]
    score: float
    chunk_ids: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, passage: Passage) -> "PassageOut":
        return cls(
            number=passage.number, source=passage.source, doc_id=passage.doc_id, start=passage.start, end=passage.end,
            text=passage.text, page=passage.page, heading_path=list(passage.heading_path), score=passage.score,
            chunk_ids=list(passage.chunk_ids),
        )


class ShortAnswerOut(BaseModel):
    """The span an offline answer starts with ("Timmy"), the citation marker it lies in, and its offsets in
    that source's text (None for a Yes/No verdict, which is not a quote)."""

    text: str
    marker: int
    start: int | None = None
    end: int | None = None

    @classmethod
    def of(cls, short: ShortAnswer) -> "ShortAnswerOut":
        return cls(text=short.text, marker=short.marker, start=short.start, end=short.end)


class AnswerOut(BaseModel):
    """The documented `--json` shape: question, answer, answered, citations, passages, trace."""

    question: str
    answer: str
    short_answer: ShortAnswerOut | None = None
    answered: bool
    citations: list[CitationOut]
    passages: list[PassageOut]
    trace: Trace

    @classmethod
    def of(cls, answer: Answer) -> "AnswerOut":
        return cls(
            question=answer.question, answer=answer.answer, answered=answer.answered,
            short_answer=ShortAnswerOut.of(answer.short_answer) if answer.short_answer else None,
            citations=[CitationOut.of(c) for c in answer.citations], passages=[PassageOut.of(p) for p in answer.passages],
            trace=answer.trace,
        )

    def to_json(self, *, passages: bool = True, trace: bool = True) -> dict[str, Any]:
        """The JSON object; `passages`/`trace` False leave those fields out (the HTTP API's include_* flags)."""
        shaped = self.model_dump(mode="json", exclude={"trace"} | (set() if passages else {"passages"}))
        if trace:
            shaped["trace"] = self.trace.to_json()
        return shaped


class RankedChunk(BaseModel):
    """One chunk of a search result, with its span in the extracted document text and every stage's score."""

    rank: int
    chunk_id: str
    source: str
    doc_id: str
    page: int | None
    start: int = Field(description="Character offset of the chunk in the document's extracted text.")
    end: int
    heading_path: list[str]
    text: str
    score: float = Field(description="The fused score that ranked it.")
    scores: dict[str, float] = Field(description="Score per stage: dense (cosine), bm25, fused, rerank.")

    @classmethod
    def of(cls, rank: int, scored: ScoredChunk) -> "RankedChunk":
        chunk = scored.chunk
        return cls(
            rank=rank, chunk_id=chunk.chunk_id, source=scored.source_display, doc_id=chunk.doc_id, page=chunk.page,
            start=chunk.start, end=chunk.end, heading_path=list(chunk.heading_path), text=chunk.text,
            score=scored.score, scores=scored.scores,
        )
