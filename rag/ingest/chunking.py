"""Token-aware chunking that keeps exact character spans, pages and heading paths.

Segments are the pieces of a document that a chunk must not cross: heading sections (heading-aware
strategy) intersected with pages. Each segment is split by semantic-text-splitter, which recursively
cuts at the largest semantic boundary (paragraph, line, sentence, word) that keeps a chunk within
`size` tokens of the embedding model's tokenizer, and which reports each chunk's character offset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from rag.config import ChunkingConfig
from rag.types import Chunk, Document


@dataclass(frozen=True, slots=True)
class _Segment:
    start: int
    end: int
    page: int | None
    heading_path: tuple[str, ...]


class Chunker:
    """Splits documents into `Chunk`s; one instance per config, reused across documents."""

    def __init__(self, config: ChunkingConfig, fingerprint: str) -> None:
        self.config = config
        self.fingerprint = fingerprint

    @cached_property
    def _text_splitter(self) -> object:
        from semantic_text_splitter import TextSplitter

        return TextSplitter.from_huggingface_tokenizer(
            splitting_tokenizer(), capacity=self.config.size, overlap=self.config.overlap
        )

    @cached_property
    def _markdown_splitter(self) -> object:
        from semantic_text_splitter import MarkdownSplitter

        return MarkdownSplitter.from_huggingface_tokenizer(
            splitting_tokenizer(), capacity=self.config.size, overlap=self.config.overlap
        )

    def chunk(self, document: Document, source: str, file_type: str) -> list[Chunk]:
        splitter = self._markdown_splitter if file_type == "markdown" else self._text_splitter
        chunks: list[Chunk] = []
        for segment in self._segments(document):
            piece = document.text[segment.start : segment.end]
            for offset, text in splitter.chunk_indices(piece):  # type: ignore[attr-defined]
                start = segment.start + offset
                end = start + len(text)
                chunks.append(
                    Chunk(
                        chunk_id=self._chunk_id(source, document.doc_id, start, end, text),
                        source=source,
                        doc_id=document.doc_id,
                        ordinal=len(chunks),
                        start=start,
                        end=end,
                        text=text,
                        page=segment.page,
                        heading_path=segment.heading_path,
                    )
                )
        return chunks

    def _segments(self, document: Document) -> list[_Segment]:
        use_sections = self.config.strategy != "recursive" and bool(document.sections)
        sections = (
            [(s.start, s.end, s.heading_path) for s in document.sections]
            if use_sections
            else [(0, len(document.text), ())]
        )
        pages = [(p.start, p.end, p.number) for p in document.pages] or [(0, len(document.text), None)]
        segments: list[_Segment] = []
        for s_start, s_end, path in sections:
            for p_start, p_end, number in pages:
                start, end = max(s_start, p_start), min(s_end, p_end)
                if end > start and document.text[start:end].strip():
                    segments.append(_Segment(start, end, number, path))
        return segments

    def _chunk_id(self, source: str, doc_id: str, start: int, end: int, text: str) -> str:
        """Deterministic id: the same text at the same place under the same config keeps its id."""
        key = "\x00".join((source, doc_id, str(start), str(end), self.fingerprint, text))
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


_TOKENIZER_CACHE: dict[str, object] = {}


def splitting_tokenizer() -> object:
    """The embedding model's tokenizer with truncation and padding off, for counting tokens."""
    if "splitting" not in _TOKENIZER_CACHE:
        from rag.index.embedders.minilm import load_tokenizer

        tokenizer = load_tokenizer()
        tokenizer.no_truncation()
        tokenizer.no_padding()
        _TOKENIZER_CACHE["splitting"] = tokenizer
    return _TOKENIZER_CACHE["splitting"]
