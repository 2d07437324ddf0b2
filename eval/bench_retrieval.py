"""Retrieval quality and latency of the pipeline's retrievers on BEIR-style data and the team's gold set.

For each variant (BM25 alone, dense alone, the default hybrid, alternatives) it reports nDCG@10,
Recall@10 and Recall@100 (pytrec_eval) at document level (a document's rank is that of its best
chunk), and the p50/p95 latency of one default search (query embedding + both retrievers + fusion).

    python eval/bench_retrieval.py --dataset ../shared/datasets/scifact --index .rag/scifact
    python eval/bench_retrieval.py --gold eval/gold/sample.jsonl --index .rag/demo

The index is built with `rag ingest` defaults when it does not exist yet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from rag.config import RagConfig, load_config
from rag.evaluate.datasets import load_beir
from rag.evaluate.metrics import mean_metrics, retrieval_metrics
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.retrieve.access import Access
from rag.retrieve.search import HybridSearcher

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = 200  # chunks per retriever when evaluating, so 100 distinct documents survive de-duplication

VARIANTS: dict[str, list[str]] = {
    "bm25": ["retrieval.dense_top_k=0"],
    "dense": ["retrieval.bm25_top_k=0"],
    "hybrid-default": [],  # convex, dense weight 0.5, min-max normalisation
    "convex-dense0.3": ["retrieval.dense_weight=0.3"],
    "convex-dense0.7": ["retrieval.dense_weight=0.7"],
    "convex-zscore": ["retrieval.normalization=zscore"],
    "rrf-k60": ["retrieval.fusion=rrf"],
}


def load_gold(path: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Answerable gold questions; relevant documents are their source files (doc ids are the display paths)."""
    queries, qrels = {}, {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["sources"]:
            queries[record["id"]] = record["question"]
            qrels[record["id"]] = {source: 1 for source in record["sources"]}
    return queries, qrels


def repo_relative(path: str) -> str:
    """Gold sources are paths relative to the repo (`data/handbook.pdf`); an index built here from the absolute
    `--corpus` path records absolute ones."""
    candidate = Path(path)
    if candidate.is_absolute() and candidate.is_relative_to(REPO):
        return candidate.relative_to(REPO).as_posix()
    return path


def ensure_index(index_dir: Path, corpus: Path, config: RagConfig) -> None:
    if (index_dir / "manifest.sqlite").exists():
        return
    print(f"building the index {index_dir} from {corpus} ...", flush=True)
    with Index.open(index_dir, config, writable=True) as index:
        Ingestor(index).ingest([str(corpus)])


def run_variant(index_dir: Path, overrides: list[str], queries: dict[str, str], doc_key: str) -> dict[str, dict[str, float]]:
    config = load_config(None, [f"retrieval.top_k={CANDIDATES}", *overrides])
    config.retrieval.dense_top_k = CANDIDATES if config.retrieval.dense_top_k else 0
    config.retrieval.bm25_top_k = CANDIDATES if config.retrieval.bm25_top_k else 0
    run: dict[str, dict[str, float]] = {}
    with Index.open(index_dir, config) as index:
        searcher = HybridSearcher(index, config.retrieval)
        for query_id, text in queries.items():
            ranked: dict[str, float] = {}
            for position, scored in enumerate(searcher.search([text], limit=CANDIDATES, access=Access.unrestricted()).chunks):
                key = repo_relative(scored.source_display) if doc_key == "source" else scored.chunk.doc_id
                if key not in ranked and len(ranked) < 100:
                    ranked[key] = float(CANDIDATES - position)  # rank-preserving score for trec_eval
            run[query_id] = ranked
    return run


def latency(index_dir: Path, queries: dict[str, str], repeats: int = 1) -> dict[str, float]:
    config = load_config()
    with Index.open(index_dir, config) as index:
        searcher = HybridSearcher(index, config.retrieval)
        searcher.search(["warm up"], access=Access.unrestricted())
        timings = []
        for _ in range(repeats):
            for text in queries.values():
                started = time.perf_counter()
                searcher.search([text], access=Access.unrestricted())
                timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 1), "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1)}


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    return mean_metrics(retrieval_metrics(run, qrels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, help="BEIR folder with corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--gold", type=Path, help="JSONL gold set (question, answers, sources) instead of BEIR")
    parser.add_argument("--corpus", type=Path, default=REPO / "data", help="with --gold: the corpus folder to index")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if bool(args.dataset) == bool(args.gold):
        parser.error("give exactly one of --dataset or --gold")

    if args.dataset:
        beir = load_beir(args.dataset, args.split)
        queries, qrels = beir.queries, beir.qrels
        ensure_index(args.index, beir.corpus, load_config())
        doc_key, name = "doc_id", args.dataset.name
    else:
        queries, qrels = load_gold(args.gold)
        ensure_index(args.index, args.corpus, load_config())
        doc_key, name = "source", args.gold.name

    results: dict[str, Any] = {"dataset": name, "queries": len(queries), "variants": {}}
    print(f"| {name} ({len(queries)} queries) | nDCG@10 | Recall@10 | Recall@100 | MRR@10 |\n|---|---|---|---|---|")
    for variant in args.variants.split(","):
        metrics = evaluate(run_variant(args.index, VARIANTS[variant], queries, doc_key), qrels)
        results["variants"][variant] = metrics
        print(f"| {variant} | {metrics['nDCG@10']:.3f} | {metrics['Recall@10']:.3f} | {metrics['Recall@100']:.3f} | {metrics['MRR@10']:.3f} |", flush=True)
    results["latency_default_search"] = latency(args.index, queries)
    print(f"default search latency: p50 {results['latency_default_search']['p50_ms']} ms, p95 {results['latency_default_search']['p95_ms']} ms")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
