"""Plain data types shared by every stage. One place defines them."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.core.trace import Trace


@dataclass(frozen=True, slots=True)
class Section:
    """A span of a document's text under one heading path (e.g. ("Benefits", "Vacation"))."""

    start: int
    end: int
    heading_path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Page:
    """A span of a document's text that came from one page (1-based number)."""

    start: int
    end: int
    number: int


@dataclass(slots=True)
class Document:
    """Extracted text of one document plus its structure.

    `doc_id` is the source path for ordinary files and the record id for JSON Lines records.
    Sections and pages are character spans into `text`; every chunk span points into `text` too.
    `groups`: who may read it through the server; empty means every reader (see rag.retrieve.access).
    """

    doc_id: str
    text: str
    title: str = ""
    sections: list[Section] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    groups: tuple[str, ...] = ()


@dataclass(slots=True)
class LoadedSource:
    """What a loader returns for one file: its documents and any notes worth reporting."""

    file_type: str
    documents: list[Document]
    notes: list[str] = field(default_factory=list)

    @property
    def page_count(self) -> int:
        return sum(len(d.pages) for d in self.documents)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable piece of a document: `document.text[start:end] == text`."""

    chunk_id: str
    source: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    tokens: int | None = None  # embedding-model tokens of `text`, counted at ingest; None in indexes made before


@dataclass(slots=True)
class ScoredChunk:
    """A retrieved chunk with the scores and ranks each stage gave it (for traces and explanations)."""

    chunk: Chunk
    score: float
    source_display: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # e.g. dense, bm25, fused, rerank
    ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank per stage


@dataclass(slots=True)
class Passage:
    """A numbered piece of context given to the generator: one contiguous span of one document."""

    number: int
    source: str  # the path as given at ingest
    source_key: str  # the manifest's absolute path
    doc_id: str
    start: int
    end: int
    text: str  # == document text[start:end]
    page: int | None
    heading_path: tuple[str, ...]
    score: float
    chunk_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Citation:
    """One verified citation: `text == extracted_document_text[start:end]` of `source`."""

    marker: int
    source: str
    doc_id: str
    page: int | None
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """The span that answers, leading the answer text ("Timmy", "$750", "Yes"): `start`/`end` are offsets in the
    document text inside the span of citation `marker` (None for "Yes"/"No", which the citation's sentence shows)."""

    text: str
    marker: int
    start: int | None = None
    end: int | None = None


@dataclass(slots=True)
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    passages: list[Passage]
    trace: Trace  # typed; its JSON is trace.to_json()
    answered: bool = True  # False when the documents do not contain the answer
    short_answer: ShortAnswer | None = None  # offline answers: the span the answer text starts with
