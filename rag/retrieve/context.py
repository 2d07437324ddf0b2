"""Context assembly: ranked chunks -> numbered passages for the generator.

Steps: relevance cut-off, optional neighbour expansion, merging of overlapping or adjacent chunks
of the same document into one span, and a token budget. Every passage's text is re-sliced from
the stored document text, so `document_text[start:end] == passage.text` holds by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rag.config import ContextConfig
from rag.core.trace import ContextInfo
from rag.index.contracts import Catalog
from rag.types import Chunk, Document, Passage, ScoredChunk

ADJACENT_GAP = 2  # chunks separated by at most a blank line are merged


@dataclass(slots=True)
class _Group:
    chunks: list[Chunk]
    score: float
    start: int
    end: int


class ContextAssembler:
    def __init__(self, manifest: Catalog, config: ContextConfig, count_tokens: Callable[[str], int]) -> None:
        self.manifest = manifest
        self.config = config
        self.count_tokens = count_tokens  # callable: str -> int, without special tokens (as counted at ingest)
        self._documents: dict[tuple[str, str], Document] = {}

    def assemble(self, ranked: list[ScoredChunk], visible: "frozenset[str] | None" = None) -> tuple[list[Passage], ContextInfo]:
        """`visible`: the chunk ids the reader may see; neighbour expansion never adds any other."""
        trace = ContextInfo()
        if not ranked:
            return [], trace
        best = max(s.score for s in ranked)
        kept = [s for s in ranked if best <= 0 or s.score >= self.config.min_relative_score * best]
        trace.cut_by_relevance = len(ranked) - len(kept)
        groups = self._merge(self._with_neighbours(kept, visible))
        groups.sort(key=lambda g: -g.score)
        self._read_documents(groups[: self.config.max_passages])  # the loop below reads at least these
        passages: list[Passage] = []
        used = 0
        for group in groups:
            if len(passages) >= self.config.max_passages:
                break
            document = self.document(group.chunks[0].source, group.chunks[0].doc_id)
            if document is None:
                continue
            start, end = group.start, group.end
            tokens = self._tokens(group, document.text)
            if used + tokens > self.config.max_tokens:
                if passages:
                    continue  # a smaller passage further down may still fit
                end = self._truncate(document.text, start, end, self.config.max_tokens)
                tokens = self.count_tokens(document.text[start:end])
            used += tokens
            first = group.chunks[0]
            passages.append(
                Passage(
                    number=len(passages) + 1,
                    source=ranked_display(ranked, first.source),
                    source_key=first.source,
                    doc_id=first.doc_id,
                    start=start,
                    end=end,
                    text=document.text[start:end],
                    page=first.page,
                    heading_path=first.heading_path,
                    score=group.score,
                    chunk_ids=[c.chunk_id for c in group.chunks],
                )
            )
        trace.passages = len(passages)
        trace.context_tokens = used
        return passages, trace

    def _tokens(self, group: _Group, text: str) -> int:
        """Tokens of a passage from the counts stored at ingest: chunks start and end at word boundaries, so
        the passage's count is the sum of its chunks' counts less the text they share (encoded here: about
        `chunking.overlap` tokens instead of the whole passage) plus any non-blank gap between them."""
        if any(chunk.tokens is None for chunk in group.chunks):  # an index from before counts were stored
            return self.count_tokens(text[group.start : group.end])
        total, end = 0, group.start
        for chunk in group.chunks:  # sorted by start
            if chunk.start >= end:
                gap = text[end : chunk.start]
                total += chunk.tokens + (self.count_tokens(gap) if gap.strip() else 0)
            elif chunk.end > end:
                total += chunk.tokens - self.count_tokens(text[chunk.start : end])
            end = max(end, chunk.end)
        return total

    def forget_documents(self) -> None:
        """Drop cached document texts (a writer may have replaced them)."""
        self._documents.clear()

    def _with_neighbours(self, kept: list[ScoredChunk], visible: "frozenset[str] | None") -> list[tuple[Chunk, float]]:
        scored = [(s.chunk, s.score) for s in kept]
        if not self.config.neighbours:
            return scored
        have = {c.chunk_id for c, _ in scored}
        distances = [d for d in range(-self.config.neighbours, self.config.neighbours + 1) if d]
        around = [(chunk.source, chunk.doc_id, chunk.ordinal + d) for chunk, _ in scored for d in distances]
        extra = {c.chunk_id: c for c in self.manifest.chunks_at(around) if c.chunk_id not in have and (visible is None or c.chunk_id in visible)}
        # neighbours inherit no score of their own: they join the group of the chunk they border
        return scored + [(c, float("-inf")) for c in extra.values()]

    def _merge(self, scored: list[tuple[Chunk, float]]) -> list[_Group]:
        by_document: dict[tuple[str, str], list[tuple[Chunk, float]]] = {}
        for chunk, score in scored:
            by_document.setdefault((chunk.source, chunk.doc_id), []).append((chunk, score))
        groups: list[_Group] = []
        for items in by_document.values():
            items.sort(key=lambda item: item[0].start)
            current: _Group | None = None
            for chunk, score in items:
                if current is not None and chunk.start <= current.end + ADJACENT_GAP:
                    current.chunks.append(chunk)
                    current.end = max(current.end, chunk.end)
                    current.score = max(current.score, score)
                else:
                    current = _Group([chunk], score, chunk.start, chunk.end)
                    groups.append(current)
        return [g for g in groups if g.score != float("-inf")]

    def _read_documents(self, groups: list[_Group]) -> None:
        """Read the documents of these groups not cached yet, in one catalog read (one round trip on a database)."""
        keys = {(g.chunks[0].source, g.chunks[0].doc_id) for g in groups} - self._documents.keys()
        if keys:
            self._documents.update(self.manifest.documents(sorted(keys)))

    def document(self, source: str, doc_id: str) -> Document | None:
        key = (source, doc_id)
        if key not in self._documents:
            document = self.manifest.document(source, doc_id)
            if document is None:
                return None
            self._documents[key] = document
        return self._documents[key]

    def _truncate(self, text: str, start: int, end: int, budget: int) -> int:
        """Shorten [start, end) to about `budget` tokens, ending at a word boundary."""
        low, high = start, end
        while high - low > 16:
            middle = (low + high) // 2
            if self.count_tokens(text[start:middle]) <= budget:
                low = middle
            else:
                high = middle
        cut = text.rfind(" ", start, low)
        return cut if cut > start else low


def ranked_display(ranked: list[ScoredChunk], source_key: str) -> str:
    return next((s.source_display for s in ranked if s.chunk.source == source_key), source_key)
