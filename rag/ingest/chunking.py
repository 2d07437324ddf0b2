"""Token-aware chunking that keeps exact character spans, pages and heading paths.

Segments are the pieces of a document that a chunk must not cross: heading sections (heading-aware
strategy) intersected with pages. Each segment is split by semantic-text-splitter, which recursively
cuts at the largest semantic boundary (paragraph, line, sentence, word) that keeps a chunk within
`size` tokens of the embedding model's tokenizer, and which reports each chunk's character offset.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag.config import ChunkingConfig
from rag.core.tokens import count_tokens, splitting_tokenizer, token_counts
from rag.types import Chunk, Document

if TYPE_CHECKING:
    from semantic_text_splitter import MarkdownSplitter, TextSplitter

__all__ = ["Chunker", "splitting_tokenizer", "without_lone_surrogates"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # in a Python str every surrogate code point is a lone one


def without_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate (from JSON "\\ud800" escapes or surrogateescape decoding, which UTF-8 cannot
    encode) replaced by U+FFFD: one code point for one, so every character offset stays valid."""
    return _LONE_SURROGATE.sub("\ufffd", text) if _LONE_SURROGATE.search(text) else text


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
        self._splitters: dict[tuple[bool, int], TextSplitter | MarkdownSplitter] = {}

    def _splitter(self, markdown: bool, capacity: int) -> TextSplitter | MarkdownSplitter:
        key = (markdown, capacity)
        if key not in self._splitters:
            from semantic_text_splitter import MarkdownSplitter, TextSplitter

            kind = MarkdownSplitter if markdown else TextSplitter
            self._splitters[key] = kind.from_huggingface_tokenizer(
                splitting_tokenizer(), capacity=capacity, overlap=min(self.config.overlap, capacity // 2)
            )
        return self._splitters[key]

    def chunk(self, document: Document, source: str, file_type: str) -> list[Chunk]:
        markdown = file_type == "markdown"
        encodable = without_lone_surrogates(document.text)  # what the Rust splitter and the tokenizer can take
        spans = [
            (start, end, segment)
            for segment in self._segments(document)
            for start, end in self._split(encodable, segment, markdown)
        ]
        texts = [document.text[start:end] for start, end, _ in spans]
        # counted once here so that context assembly never re-encodes a passage made of one chunk
        counts = token_counts([encodable[start:end] for start, end, _ in spans])
        return [
            Chunk(
                chunk_id=self._chunk_id(source, document.doc_id, start, end, text),
                source=source,
                doc_id=document.doc_id,
                ordinal=ordinal,
                start=start,
                end=end,
                text=text,
                page=segment.page,
                heading_path=segment.heading_path,
                tokens=tokens,
            )
            for ordinal, ((start, end, segment), text, tokens) in enumerate(zip(spans, texts, counts))
        ]

    def _split(self, text: str, segment: _Segment, markdown: bool) -> list[tuple[int, int]]:
        """Spans of one segment. A section's heading line stays with its first chunk instead of
        becoming a chunk of its own: the body is split with room left for the heading."""
        size = self.config.size
        piece = text[segment.start : segment.end]
        heading_end = piece.find("\n") if segment.heading_path else -1
        if heading_end > 0 and count_tokens(piece) > size:
            heading_tokens = count_tokens(piece[:heading_end])
            body_start = len(piece) - len(piece[heading_end:].lstrip())
            if heading_tokens <= size // 4 and body_start < len(piece):
                body = piece[body_start:]
                splitter = self._splitter(markdown, size - heading_tokens - 1)
                spans = [
                    (segment.start + body_start + offset, segment.start + body_start + offset + len(chunk))
                    for offset, chunk in splitter.chunk_indices(body)
                ]
                if spans:
                    spans[0] = (segment.start, spans[0][1])
                    return spans
        return [
            (segment.start + offset, segment.start + offset + len(chunk))
            for offset, chunk in self._splitter(markdown, size).chunk_indices(piece)
        ]

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
        return _attach_bare_headings(segments, document.text)

    def _chunk_id(self, source: str, doc_id: str, start: int, end: int, text: str) -> str:
        """Deterministic id: the same text at the same place under the same config keeps its id."""
        key = "\x00".join((source, doc_id, str(start), str(end), self.fingerprint, text))
        return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _attach_bare_headings(segments: list[_Segment], text: str) -> list[_Segment]:
    """A section that is only its heading ("# Guide" directly followed by "## Setup") joins the next
    section on the same page, so no chunk is a lone heading; the deeper heading path is kept."""
    merged: list[_Segment] = []
    carry: _Segment | None = None
    for segment in segments:
        if carry is not None and carry.page == segment.page:
            segment = _Segment(carry.start, segment.end, segment.page, segment.heading_path)
        elif carry is not None:
            merged.append(carry)
        carry = None
        if segment.heading_path and _is_bare_heading(text[segment.start : segment.end], segment.heading_path[-1]):
            carry = segment
        else:
            merged.append(segment)
    if carry is not None:
        merged.append(carry)
    return merged


def _is_bare_heading(piece: str, title: str) -> bool:
    return " ".join(piece.strip().lstrip("#").split()) == title
