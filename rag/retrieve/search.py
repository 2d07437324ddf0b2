"""Hybrid search over one index: dense + BM25 per query, fused, across rewritten queries too.

Every candidate list is cut to the chunks the reader may see (`rag.retrieve.access`) and the
user's filters allow *before* fusion, so score normalisation, ranks and traces only ever involve
visible, committed chunks. Restricted readers get a BM25 index built over their visible chunks only,
so even term statistics (IDF) carry nothing of documents they cannot read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
import numpy as np

from rag.config import RetrievalConfig
from rag.core.access import Access
from rag.core.trace import QueryStep, Trace
from rag.index.bm25 import BM25Index
from rag.index.store import Index
from rag.retrieve.access import SNAPSHOTS, Snapshot
from rag.retrieve.cues import boost_by_cues, query_cues
from rag.retrieve.filters import Filters, resolve
from rag.retrieve.fusion import Ranked, convex, rrf
from rag.types import Chunk, ScoredChunk

OVERFETCH = 1.5  # unfiltered HNSW fetches this many times the expected hits needed to keep k visible ones
EXACT_LIMIT = 2000  # visible sets up to this size are searched exactly over their own vectors
RESTRICTED_BM25_CACHE = 8  # per-group-set BM25 indexes kept in memory
VISIBLE_VECTORS_CACHE = 8  # vector matrices of visible sets searched exactly


@dataclass(slots=True)
class SearchResult:
    chunks: list[ScoredChunk]
    trace: Trace = field(default_factory=Trace)  # queries, filters and per_query filled in
    visible: frozenset[str] = frozenset()  # every chunk id this search was allowed to consider


class HybridSearcher:
    """Dense (Chroma) and BM25 candidates for each query, fused per query, then across queries."""

    def __init__(self, index: Index, config: RetrievalConfig) -> None:
        self.index = index
        self.config = config
        if config.bm25_top_k:
            self._global_bm25()  # fail early when BM25 is missing

    def search(
        self,
        queries: list[str],
        filters: Filters = Filters(),
        extra_vectors: list[np.ndarray] | None = None,
        limit: int | None = None,
        *,
        access: Access,
    ) -> SearchResult:
        """Search with every query (and extra query vectors, e.g. HyDE); return the fused top `limit`.

        `access` is mandatory: who reads decides what may be ranked; `filters` can only narrow it.
        """
        self.index.sync()  # catch up with what writers committed (inside a read snapshot: as of its start)
        manifest = self.index.manifest
        snapshot = SNAPSHOTS.current(manifest)
        visible = snapshot.visible(access)
        allowed = resolve(filters, manifest)
        if allowed is not None:
            visible = visible & allowed.chunk_ids
        trace = Trace(queries=queries, filters=filters.describe(), per_query=[])
        per_query: list[list[tuple[str, float]]] = []
        stage_scores: dict[str, dict[str, float]] = {"dense": {}, "bm25": {}}
        lexical_index = self._lexical_index(snapshot, access) if self.config.bm25_top_k else None
        # the lexical index holds only what `access` may read; user filters narrow it further before ranking
        mask = visible if allowed is not None else None
        read: dict[str, Chunk] = {}  # chunks already read from the manifest for this search (cue boost)
        vectors = list(self.index.query_embedder.embed(queries)) if self.config.dense_top_k and queries else []
        for position, query in enumerate(queries):
            dense = self._dense(vectors[position], visible, snapshot) if vectors else []
            lexical = _only(lexical_index.search(query, self.config.bm25_top_k, mask), visible) if lexical_index else []
            per_query.append(self._boost(query, self._fuse(dense, lexical), manifest, read))
            _keep_best(stage_scores["dense"], dense)
            _keep_best(stage_scores["bm25"], lexical)
            trace.per_query.append(QueryStep(query=query, dense=_top(dense), bm25=_top(lexical)))
        for vector in extra_vectors or []:
            dense = self._dense(vector, visible, snapshot)
            per_query.append(dense)
            _keep_best(stage_scores["dense"], dense)
            trace.per_query.append(QueryStep(query="(hypothetical answer)", dense=_top(dense), bm25=[]))
        fused = per_query[0] if len(per_query) == 1 else rrf(per_query, k=self.config.rrf_k)
        fused = fused[: limit or self.config.top_k]
        by_id = {chunk_id: read[chunk_id] for chunk_id, _ in fused if chunk_id in read}
        by_id.update((c.chunk_id, c) for c in manifest.chunks_by_id([chunk_id for chunk_id, _ in fused if chunk_id not in by_id]))
        ranks = {name: _ranks(scores) for name, scores in stage_scores.items()}
        results = []
        for rank, (chunk_id, score) in enumerate(fused, start=1):
            if chunk_id not in by_id:  # removed since the snapshot: skip rather than fail
                continue
            chunk = by_id[chunk_id]
            scored = ScoredChunk(chunk, score, snapshot.display.get(chunk.source, chunk.source))
            for name in ("dense", "bm25"):
                if chunk_id in stage_scores[name]:
                    scored.scores[name] = stage_scores[name][chunk_id]
                    scored.ranks[name] = ranks[name][chunk_id]
            scored.scores["fused"] = score
            scored.ranks["fused"] = rank
            results.append(scored)
        return SearchResult(results, trace, visible)

    def _dense(self, vector: np.ndarray, visible: frozenset[str], snapshot: Snapshot) -> list[tuple[str, float]]:
        """Top dense hits among `visible`: unfiltered HNSW over-fetch, else exact search over the visible vectors."""
        k = self.config.dense_top_k
        if not k or not visible:
            return []
        store = self.index.vectors
        total = max(len(snapshot.committed), 1)
        if len(visible) >= total:  # everything committed: a few extra hits make up for vectors not committed yet
            return _only(store.query(vector, k + 10), visible)[:k]
        wanted = min(k, len(visible))
        fetch = int(wanted * OVERFETCH * total / len(visible)) + 10
        if len(visible) > EXACT_LIMIT and fetch <= total // 2:
            hits = _only(store.query(vector, fetch), visible)
            if len(hits) >= wanted:
                return hits[:k]
        return self._exact(vector, k, visible)

    def _exact(self, vector: np.ndarray, k: int, visible: frozenset[str]) -> list[tuple[str, float]]:
        """Exact cosine top-k over the visible chunks' vectors, read once per visible set and store handle.

        No generation in the key: a chunk id fixes its text and embedding model, hence its vector, so a
        cached matrix stays right while writers add or remove other documents.
        """
        key = (self.index.location, id(self.index.vectors), visible)
        ids, matrix = VISIBLE_VECTORS.get(key, lambda: _normalised(*self.index.vectors.get_vectors(visible)))
        if not ids:
            return []
        query = np.asarray(vector, dtype=np.float32)
        scores = matrix @ (query / (np.linalg.norm(query) or 1.0))
        top = np.argsort(-scores, kind="stable")[:k]
        return [(ids[int(i)], float(scores[int(i)])) for i in top]

    def _global_bm25(self) -> BM25Index:
        """The index's BM25, reloaded when a writer has published a new version (`Index.bm25`)."""
        return self.index.bm25()

    def _lexical_index(self, snapshot: Snapshot, access: Access) -> BM25Index:
        bm25 = self._global_bm25()
        if access.everything:
            return bm25
        key = (self.index.location, self.index.bm25_generation, access.groups, snapshot.groups_epoch)
        return RESTRICTED_BM25.get(key, lambda: self._restricted_bm25(bm25, snapshot.visible(access)))

    def _restricted_bm25(self, bm25: BM25Index, visible: frozenset[str]) -> BM25Index:
        ids = [chunk_id for chunk_id in bm25.chunk_ids if chunk_id in visible]
        if len(ids) == len(bm25.chunk_ids):  # nothing hidden from this reader: the same statistics, no rebuild
            return bm25
        chunks = self.index.manifest.chunks_by_id(ids)
        restricted = BM25Index(bm25.config)
        restricted.build([c.chunk_id for c in chunks], [c.text for c in chunks])
        return restricted

    def _boost(self, query: str, fused: list[tuple[str, float]], manifest: Any, read: dict[str, Chunk]) -> list[tuple[str, float]]:
        """The fused list re-scored by the question's names and numbers found verbatim (`rag.retrieve.cues`).

        Convex fusion only: its scores lie in [0, 1] like the boost; RRF's (about 1/60) would be swamped.
        """
        cues = query_cues(query) if self.config.cue_weight and self.config.fusion == "convex" else []
        if not cues:
            return fused

        def texts(ids: list[str]) -> dict[str, str]:
            read.update((c.chunk_id, c) for c in manifest.chunks_by_id([i for i in ids if i not in read]))
            return {i: read[i].text for i in ids if i in read}

        return boost_by_cues(fused, cues, texts, self.config.cue_weight)

    def _fuse(self, dense: Ranked, lexical: Ranked) -> list[tuple[str, float]]:
        lists = [ranked for ranked in (dense, lexical)]
        if self.config.fusion == "rrf":
            return rrf([r for r in lists if r], k=self.config.rrf_k)
        weights = [self.config.dense_weight, 1.0 - self.config.dense_weight]
        return convex(lists, weights, self.config.normalization)


class _LruCache:
    """A small thread-safe LRU of built objects; a missing entry is built outside the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object, build: "Any") -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


RESTRICTED_BM25 = _LruCache(RESTRICTED_BM25_CACHE)
VISIBLE_VECTORS = _LruCache(VISIBLE_VECTORS_CACHE)


def _normalised(ids: list[str], matrix: np.ndarray) -> tuple[list[str], np.ndarray]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True) if len(ids) else np.ones((0, 1))
    return ids, matrix / np.where(norms == 0, 1.0, norms)


def _only(ranked: list[tuple[str, float]], visible: frozenset[str]) -> list[tuple[str, float]]:
    return [(item, score) for item, score in ranked if item in visible]


def _keep_best(table: dict[str, float], ranked: Ranked) -> None:
    for item, score in ranked:
        if item not in table or score > table[item]:
            table[item] = score


def _ranks(scores: dict[str, float]) -> dict[str, int]:
    return {item: rank for rank, (item, _) in enumerate(sorted(scores.items(), key=lambda kv: -kv[1]), start=1)}


def _top(ranked: Ranked, n: int = 20) -> list[tuple[str, float]]:
    return [(item, round(score, 4)) for item, score in list(ranked)[:n]]
