"""Hybrid search over one index: dense + BM25 per query, fused, across rewritten queries too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.config import RetrievalConfig
from rag.index.store import Index
from rag.retrieve.filters import Filters, resolve
from rag.retrieve.fusion import Ranked, convex, rrf
from rag.types import ScoredChunk


@dataclass(slots=True)
class SearchResult:
    chunks: list[ScoredChunk]
    trace: dict[str, Any] = field(default_factory=dict)


class HybridSearcher:
    """Dense (Chroma) and BM25 candidates for each query, fused per query, then across queries."""

    def __init__(self, index: Index, config: RetrievalConfig) -> None:
        self.index = index
        self.config = config
        self._bm25 = index.bm25() if config.bm25_top_k else None
        self._display = {r.path: r.display_path for r in index.manifest.sources()}

    def search(
        self,
        queries: list[str],
        filters: Filters = Filters(),
        extra_vectors: list[np.ndarray] | None = None,
        limit: int | None = None,
    ) -> SearchResult:
        """Search with every query (and extra query vectors, e.g. HyDE); return the fused top `limit`."""
        allowed = resolve(filters, self.index.manifest)
        trace: dict[str, Any] = {"queries": queries, "filters": filters.describe(), "per_query": []}
        per_query: list[list[tuple[str, float]]] = []
        stage_scores: dict[str, dict[str, float]] = {"dense": {}, "bm25": {}}
        vectors = list(self.index.query_embedder.embed(queries)) if self.config.dense_top_k and queries else []
        for position, query in enumerate(queries):
            dense = self._dense(vectors[position], allowed) if vectors else []
            lexical = self._bm25.search(query, self.config.bm25_top_k, allowed.chunk_ids if allowed else None) if self._bm25 else []
            per_query.append(self._fuse(dense, lexical))
            _keep_best(stage_scores["dense"], dense)
            _keep_best(stage_scores["bm25"], lexical)
            trace["per_query"].append({"query": query, "dense": _top(dense), "bm25": _top(lexical)})
        for vector in extra_vectors or []:
            dense = self._dense(vector, allowed)
            per_query.append(dense)
            _keep_best(stage_scores["dense"], dense)
            trace["per_query"].append({"query": "(hypothetical answer)", "dense": _top(dense), "bm25": []})
        fused = per_query[0] if len(per_query) == 1 else rrf(per_query, k=self.config.rrf_k)
        fused = fused[: limit or self.config.top_k]
        chunks = self.index.manifest.chunks_by_id([chunk_id for chunk_id, _ in fused])
        by_id = {c.chunk_id: c for c in chunks}
        ranks = {name: _ranks(scores) for name, scores in stage_scores.items()}
        results = []
        for rank, (chunk_id, score) in enumerate(fused, start=1):
            if chunk_id not in by_id:  # an index being rewritten under us: skip rather than fail
                continue
            scored = ScoredChunk(by_id[chunk_id], score, self._display.get(by_id[chunk_id].source, by_id[chunk_id].source))
            for name in ("dense", "bm25"):
                if chunk_id in stage_scores[name]:
                    scored.scores[name] = stage_scores[name][chunk_id]
                    scored.ranks[name] = ranks[name][chunk_id]
            scored.scores["fused"] = score
            scored.ranks["fused"] = rank
            results.append(scored)
        return SearchResult(results, trace)

    def _dense(self, vector: np.ndarray, allowed: Any) -> list[tuple[str, float]]:
        if not self.config.dense_top_k:
            return []
        if allowed is None:
            return self.index.vectors.query(vector, self.config.dense_top_k)  # type: ignore[attr-defined]
        if not allowed.sources:
            return []
        where = {"source": {"$in": sorted(allowed.sources)}}
        return self.index.vectors.query(vector, self.config.dense_top_k, where=where)  # type: ignore[attr-defined]

    def _fuse(self, dense: Ranked, lexical: Ranked) -> list[tuple[str, float]]:
        lists = [ranked for ranked in (dense, lexical)]
        if self.config.fusion == "rrf":
            return rrf([r for r in lists if r], k=self.config.rrf_k)
        weights = [self.config.dense_weight, 1.0 - self.config.dense_weight]
        return convex(lists, weights, self.config.normalization)


def _keep_best(table: dict[str, float], ranked: Ranked) -> None:
    for item, score in ranked:
        if item not in table or score > table[item]:
            table[item] = score


def _ranks(scores: dict[str, float]) -> dict[str, int]:
    return {item: rank for rank, (item, _) in enumerate(sorted(scores.items(), key=lambda kv: -kv[1]), start=1)}


def _top(ranked: Ranked, n: int = 20) -> list[list[object]]:
    return [[item, round(score, 4)] for item, score in list(ranked)[:n]]
