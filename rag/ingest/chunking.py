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
from typing import TYPE_CHECKING, NamedTuple

from rag.config import ChunkingConfig
from rag.core.tokens import splitting_tokenizer, token_counts
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


class _Split(NamedTuple):
    """text[start:end] to split into chunks of at most `capacity` tokens."""

    text: str
    start: int
    end: int
    capacity: int

    def piece(self) -> str:
        return self.text[self.start : self.end]


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
        return self.chunk_all([document], source, file_type)

    def chunk_all(self, documents: list[Document], source: str, file_type: str) -> list[Chunk]:
        """The chunks of every document of one source, in order. Work is batched over all their segments (token
        counts, splitting), which the tokenizer and the splitter spread over the CPU's cores: a file of many
        records is cut in about half the time on two cores."""
        markdown = file_type == "markdown"
        encodables = [without_lone_surrogates(document.text) for document in documents]  # what Rust can take
        placed = [(index, segment) for index, document in enumerate(documents) for segment in self._segments(document)]
        split = self._split_all([(encodables[index], segment) for index, segment in placed], markdown)
        spans = [(index, start, end, segment) for (index, segment), pieces in zip(placed, split) for start, end in pieces]
        # counted once here so that context assembly never re-encodes a passage made of one chunk
        counts = token_counts([encodables[index][start:end] for index, start, end, _ in spans])
        chunks: list[Chunk] = []
        ordinals = [0] * len(documents)
        for (index, start, end, segment), tokens in zip(spans, counts):
            document, text = documents[index], documents[index].text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=self._chunk_id(source, document.doc_id, start, end, text),
                    source=source,
                    doc_id=document.doc_id,
                    ordinal=ordinals[index],
                    start=start,
                    end=end,
                    text=text,
                    page=segment.page,
                    heading_path=segment.heading_path,
                    tokens=tokens,
                )
            )
            ordinals[index] += 1
        return chunks

    def _split_all(self, pieces: list[tuple[str, _Segment]], markdown: bool) -> list[list[tuple[int, int]]]:
        """The spans of each (text, segment). A section's heading line stays with its first chunk instead of
        becoming a chunk of its own: the body is split with room left for the heading."""
        size = self.config.size
        jobs = [_Split(text, segment.start, segment.end, size) for text, segment in pieces]  # one per piece, in order
        headed = [i for i, job in enumerate(jobs) if pieces[i][1].heading_path and job.text.find("\n", job.start, job.end) > job.start]
        over = [i for i, count in zip(headed, token_counts([jobs[i].piece() for i in headed])) if count > size]
        heading_ends = [jobs[i].text.find("\n", jobs[i].start, jobs[i].end) for i in over]
        heading_counts = token_counts([jobs[i].text[jobs[i].start : end] for i, end in zip(over, heading_ends)])
        for i, heading_end, heading_tokens in zip(over, heading_ends, heading_counts):
            job = jobs[i]
            body_start = job.end - len(job.text[heading_end : job.end].lstrip())
            if heading_tokens <= size // 4 and body_start < job.end:
                jobs[i] = job._replace(start=body_start, capacity=size - heading_tokens - 1)
        spans = self._run_splitters(jobs, markdown)
        headed_split = [i for i, job in enumerate(jobs) if job.capacity != size]
        retry = [i for i in headed_split if not spans[i]]  # nothing left of the body: split the whole piece
        whole = [_Split(jobs[i].text, pieces[i][1].start, jobs[i].end, size) for i in retry]
        for i, found in zip(retry, self._run_splitters(whole, markdown)):
            spans[i] = found
        for i in set(headed_split) - set(retry):
            if spans[i]:
                spans[i][0] = (pieces[i][1].start, spans[i][0][1])  # the heading line joins the first chunk
        return spans

    def _run_splitters(self, jobs: list[_Split], markdown: bool) -> list[list[tuple[int, int]]]:
        """The spans of each job's piece split at its capacity, in one batched call per capacity."""
        out: list[list[tuple[int, int]]] = [[] for _ in jobs]
        by_capacity: dict[int, list[int]] = {}
        for position, job in enumerate(jobs):
            by_capacity.setdefault(job.capacity, []).append(position)
        for capacity, positions in by_capacity.items():
            found_per_job = self._splitter(markdown, capacity).chunk_all_indices([jobs[p].piece() for p in positions])
            for p, found in zip(positions, found_per_job):
                out[p] = [(jobs[p].start + offset, jobs[p].start + offset + len(chunk)) for offset, chunk in found]
        return out

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
