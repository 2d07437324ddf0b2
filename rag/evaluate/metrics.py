"""Retrieval metrics through pytrec_eval (the reference trec_eval implementation), per query."""

from __future__ import annotations

import statistics

# pytrec_eval measure -> the name reports use
RETRIEVAL_MEASURES = {
    "ndcg_cut_10": "nDCG@10",
    "recall_10": "Recall@10",
    "recall_100": "Recall@100",
    "recip_rank_10": "MRR@10",
    "map": "MAP",
}


def retrieval_metrics(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Per-query metrics keyed by query id; queries with no retrieved documents score 0, not missing."""
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.100", "map"})
    complete_run = {query_id: run.get(query_id) or {"__none__": 0.0} for query_id in qrels}
    scores = evaluator.evaluate(complete_run)
    per_query: dict[str, dict[str, float]] = {}
    for query_id, values in scores.items():
        row = {label: float(values[key]) for key, label in RETRIEVAL_MEASURES.items() if key in values}
        row["MRR@10"] = _reciprocal_rank_at(run.get(query_id, {}), qrels[query_id], 10)
        per_query[query_id] = row
    return per_query


def _reciprocal_rank_at(ranked: dict[str, float], relevant: dict[str, int], k: int) -> float:
    """MRR@k: pytrec_eval's recip_rank has no cut-off, so the cut is applied here on its ranking order."""
    order = sorted(ranked.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return next((1.0 / rank for rank, (doc, _) in enumerate(order, start=1) if relevant.get(doc, 0) > 0), 0.0)


def mean_metrics(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    names = sorted({name for row in per_query.values() for name in row})
    return {name: round(statistics.mean(row[name] for row in per_query.values()), 4) for name in names}
