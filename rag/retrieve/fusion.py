"""Fusing ranked lists: reciprocal rank fusion and a convex combination of normalised scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Ranked = Sequence[tuple[str, float]]  # (id, score), best first


def rrf(lists: Sequence[Ranked], k: int = 60, weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Cormack et al. 2009: score(d) = sum_i w_i / (k + rank_i(d)). Ignores score scales entirely."""
    fused: dict[str, float] = {}
    for position, ranked in enumerate(lists):
        weight = 1.0 if weights is None else weights[position]
        for rank, (item, _) in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


THEORETICAL_FLOOR = 0.0  # BM25's least score, and the cosine of unrelated text (a negative cosine is no evidence either)


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """Map one query's scores onto a comparable scale.

    `theoretical` (the default; Bruch, Gai and Ingber 2023, "theoretical min-max"): score / the list's best,
    measured from the scorer's floor (0) instead of the list's own minimum, so a flat list stays flat and
    carries little weight; a list whose best score is at or below the floor maps to zeros (no evidence).
    `minmax` and `zscore` use the list's own spread; a constant list maps to all ones.
    """
    if scores.size == 0:
        return scores
    if method == "theoretical":
        high = scores.max()
        return (scores - THEORETICAL_FLOOR) / (high - THEORETICAL_FLOOR) if high > THEORETICAL_FLOOR else np.zeros_like(scores)
    if method == "zscore":
        spread = scores.std()
        return (scores - scores.mean()) / spread if spread > 0 else np.ones_like(scores)
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low) if high > low else np.ones_like(scores)


def convex(lists: Sequence[Ranked], weights: Sequence[float], method: str = "theoretical") -> list[tuple[str, float]]:
    """sum_i w_i * norm_i(d); an item missing from list i gets that list's lowest normalised value.

    Normalisation is per query over each list's own candidates (all of them are scored by that
    retriever). Imputing the list's lowest value (not 0) matters: with 0, one retriever's hits that
    the other missed outrank agreed ones when that other retriever is weak (measured in docs/retrieval.md).
    """
    normalised: list[dict[str, float]] = []
    floors: list[float] = []
    for ranked in lists:
        values = normalise(np.fromiter((score for _, score in ranked), dtype=np.float64, count=len(ranked)), method).tolist()
        normalised.append(dict(zip((item for item, _ in ranked), values)))
        floors.append(min(values) if values else 0.0)
    fused = dict.fromkeys((item for table in normalised for item in table), 0.0)
    for weight, table, floor in zip(weights, normalised, floors):
        for item in fused:
            fused[item] += weight * table.get(item, floor)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
