"""How each fusion holds up against its own parts, also when one retriever is made weaker on purpose.

The held-out sets the default must not lose on include one where dense retrieval is far weaker than BM25
(nDCG@10 0.486 vs 0.842), and data where BM25 is the weak side exists too (the FAQ set). Rather than guess
such data, this study weakens one side of the sets we have: dense noise (every query vector gets Gaussian
noise, 0.07 per dimension, and is re-normalised: SciFact's dense nDCG@10 0.65 -> 0.56, DROP's 0.36 -> 0.30),
and BM25 word dropping (BM25 sees each query word with probability 0.5, at least one: SciFact's BM25
0.68 -> about 0.48). For each fusion it prints nDCG@10 / Recall@10 with the margin over the better single
retriever of that column, and the worst margin over all columns.

Candidates are exact: cosine over every chunk vector of the index (no HNSW error) and the index's BM25,
200 chunks each, fused by the library's own `rag.retrieve.fusion` (and `rag.retrieve.cues` for the name and
number boost); a document ranks by its best chunk. The SQuAD-shifts sets come from
`eval/build_squad_shifts_retrieval.py`; keep held-out sets (the FAQ set) out of this study.

    python eval/fusion_study.py --dataset ../shared/datasets/scifact --dataset ../shared/datasets/drop \\
        --dataset .rag/datasets/squad-wiki --dataset .rag/datasets/squad-nyt --dataset .rag/datasets/squad-reddit \\
        --dataset .rag/datasets/squad-amazon --gold eval/gold/sample.jsonl --corpus data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rag.config import RetrievalConfig, load_config
from rag.evaluate.datasets import BeirDataset, load_beir, load_gold_retrieval
from rag.evaluate.metrics import mean_metrics, retrieval_metrics
from rag.evaluate.retrieval import ensure_index
from rag.index.store import Index
from rag.retrieve.cues import boost_by_cues, query_cues
from rag.retrieve.fusion import convex, rrf

DEPTH = 200
DEFAULT_CUE_WEIGHT = RetrievalConfig().cue_weight
FUSIONS = {
    "convex 0.5 min-max (old default)": ("convex", 0.5, "minmax"),
    "convex 0.5 z-score": ("convex", 0.5, "zscore"),
    "RRF k=60": ("rrf", 0.5, ""),
    "convex 0.4 theoretical": ("convex", 0.4, "theoretical"),
    "convex 0.5 theoretical (part 1)": ("convex", 0.5, "theoretical"),
    "convex 0.6 theoretical": ("convex", 0.6, "theoretical"),
    "agreement-weighted theoretical (measured, dropped)": ("agreement", 0.5, "theoretical"),
    **{f"convex 0.5 theoretical + cues {w}{' (default)' if w == DEFAULT_CUE_WEIGHT else ''}": ("cues", w, "theoretical") for w in (0.1, 0.2, 0.3)},
}
AGREEMENT_TOP = 10  # how many of a list's top hits the other list is asked to confirm
AGREEMENT_SHIFT = 0.5  # the most the dense weight moves away from 0.5, as a fraction of 0.5


def confirmation(ranked: list[tuple[str, float]], other: list[tuple[str, float]]) -> float:
    """How well `other` confirms `ranked`'s top hits: the mean of 1 / log2(1 + rank in `other`), 0 when absent."""
    ranks = {item: rank for rank, (item, _) in enumerate(other, start=1)}
    top = [item for item, _ in ranked[:AGREEMENT_TOP]]
    return float(np.mean([1 / np.log2(1 + ranks[item]) if item in ranks else 0.0 for item in top])) if top else 0.0


def agreement_weight(dense: list[tuple[str, float]], lexical: list[tuple[str, float]]) -> float:
    """The dense weight for one query: moved towards the list whose top hits the other list confirms better."""
    dense_confirmed, lexical_confirmed = confirmation(dense, lexical), confirmation(lexical, dense)
    if dense_confirmed + lexical_confirmed == 0:
        return 0.5
    return 0.5 + AGREEMENT_SHIFT * 0.5 * (dense_confirmed - lexical_confirmed) / (dense_confirmed + lexical_confirmed)


class Candidates:
    """Per query: exact dense and BM25 chunk lists, and how chunks map to documents."""

    def __init__(self, dataset: BeirDataset, cache_dir: Path) -> None:
        config = load_config()
        folder, _ = ensure_index(dataset, config, cache_dir)
        self.qrels = dataset.qrels
        self.query_ids = list(dataset.queries)
        root = dataset.corpus.resolve().parent
        with Index.open(folder, config) as index:
            rows = index.manifest.db.execute("SELECT chunk_id, source, doc_id, text FROM chunks ORDER BY chunk_id").fetchall()
            self.document = {r[0]: (Path(r[1]).relative_to(root).as_posix() if dataset.by_source else r[2]) for r in rows}
            self.text = {r[0]: r[3] for r in rows}
            ids, matrix = index.vectors.get_vectors([r[0] for r in rows])  # type: ignore[attr-defined]
            self.ids, self.matrix = ids, matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
            texts = [dataset.queries[q] for q in self.query_ids]
            self.vectors = np.asarray(index.query_embedder.embed(texts), dtype=np.float32)  # type: ignore[attr-defined]
            self.bm25 = index.bm25()
            self.texts = texts
            self.lexical = self.lexical_with(0.0)

    def lexical_with(self, drop: float, seed: int = 1) -> list[list[tuple[str, float]]]:
        """BM25 lists when each query word is dropped with probability `drop` (at least one word kept)."""
        rng = np.random.default_rng(seed)
        lists = []
        for text in self.texts:
            words = text.split()
            keep = rng.random(len(words)) >= drop
            if not keep.any():
                keep[rng.integers(len(words))] = True
            lists.append(self.bm25.search(" ".join(w for w, k in zip(words, keep) if k), DEPTH))
        return lists

    def dense(self, noise: float, seed: int = 0) -> list[list[tuple[str, float]]]:
        vectors = self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True)
        if noise:
            vectors = vectors + noise * np.random.default_rng(seed).standard_normal(vectors.shape).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = vectors @ self.matrix.T
        lists = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:DEPTH]
            lists.append([(self.ids[i], float(row[i])) for i in top])
        return lists

    def evaluate(self, ranked: list[list[tuple[str, float]]]) -> dict[str, float]:
        run: dict[str, dict[str, float]] = {}
        for query_id, chunks in zip(self.query_ids, ranked):
            documents: dict[str, float] = {}
            for position, (chunk_id, _) in enumerate(chunks):
                documents.setdefault(self.document[chunk_id], float(len(chunks) - position))
            run[query_id] = dict(list(documents.items())[:100])
        return mean_metrics(retrieval_metrics(run, self.qrels))


def fuse(
    kind: str, weight: float, method: str, dense: list[tuple[str, float]], lexical: list[tuple[str, float]], query: str, candidates: Candidates
) -> list[tuple[str, float]]:
    if kind == "cues":  # `weight` is the cue weight here; the fusion is the part-1 default
        fused = convex([dense, lexical], [0.5, 0.5], method)
        return boost_by_cues(fused, query_cues(query), lambda ids: {i: candidates.text[i] for i in ids}, weight)
    if kind == "rrf":
        return rrf([ranked for ranked in (dense, lexical) if ranked])
    if kind == "agreement":
        weight = agreement_weight(dense, lexical)
    return convex([dense, lexical], [weight, 1 - weight], method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, action="append", default=[])
    parser.add_argument("--gold", type=Path)
    parser.add_argument("--corpus", type=Path, default=Path("data"))
    parser.add_argument("--noise", type=float, default=0.07, help="query-vector noise of the weakened-dense columns (0: none)")
    parser.add_argument("--drop", type=float, default=0.5, help="word-drop probability of the weakened-BM25 columns (0: none)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".rag/eval-cache"))
    args = parser.parse_args()
    datasets = [load_beir(folder) for folder in args.dataset] + ([load_gold_retrieval(args.gold, args.corpus)] if args.gold else [])
    columns: list[tuple[str, Candidates, list[list[tuple[str, float]]], list[list[tuple[str, float]]]]] = []
    for dataset in datasets:
        candidates = Candidates(dataset, args.cache_dir)
        exact = candidates.dense(0.0)
        columns.append((dataset.name, candidates, exact, candidates.lexical))
        if args.noise and not dataset.by_source:
            columns.append((f"{dataset.name}, weak dense", candidates, candidates.dense(args.noise), candidates.lexical))
        if args.drop and not dataset.by_source:
            columns.append((f"{dataset.name}, weak BM25", candidates, exact, candidates.lexical_with(args.drop)))
    best: list[tuple[float, float]] = []
    print("| fusion | " + " | ".join(name for name, *_ in columns) + " | worst margin |\n|---|" + "---|" * (len(columns) + 1))
    for label, dense_only in (("BM25 alone", False), ("dense alone", True)):
        cells = []
        for _, candidates, dense, lexical in columns:
            metrics = candidates.evaluate(dense if dense_only else lexical)
            cells.append(metrics)
        print(f"| {label} | " + " | ".join(f"{m['nDCG@10']:.3f} / {m['Recall@10']:.3f}" for m in cells) + " | |")
        best = [(max(b[0], m["nDCG@10"]), max(b[1], m["Recall@10"])) for b, m in zip(best or [(0.0, 0.0)] * len(cells), cells)]
    for label, (kind, weight, method) in FUSIONS.items():
        cells, worst = [], 1.0
        for (_, candidates, dense, lexical), (best_ndcg, best_recall) in zip(columns, best):
            metrics = candidates.evaluate([fuse(kind, weight, method, d, b, q, candidates) for d, b, q in zip(dense, lexical, candidates.texts)])
            margins = (metrics["nDCG@10"] - best_ndcg, metrics["Recall@10"] - best_recall)
            worst = min(worst, *margins)
            cells.append(f"{metrics['nDCG@10']:.3f} ({margins[0]:+.3f}) / {metrics['Recall@10']:.3f} ({margins[1]:+.3f})")
        print(f"| {label} | " + " | ".join(cells) + f" | {worst:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
