"""Retrieval evaluation of one or more pipeline configs on a BEIR dataset.

The harness indexes the corpus itself, in a cache folder keyed by the dataset fingerprint and the
indexing part of the config, so later runs (and other configs that index the same way) reuse it.
A document's rank is the rank of its best chunk.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from rag.config import RagConfig
from rag.core.access import Access
from rag.core.progress import Progress
from rag.evaluate.datasets import BeirDataset
from rag.evaluate.metrics import mean_metrics, retrieval_metrics
from rag.evaluate.runs import RunWriter
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.retrieve.search import HybridSearcher

DEPTH = 100  # documents kept per query
CHUNK_CANDIDATES = 200  # chunks fetched per retriever so that DEPTH distinct documents survive


def indexing_key(dataset: BeirDataset, config: RagConfig) -> str:
    """What decides the index's content: the dataset and the chunking/embedding/BM25/JSONL settings."""
    parts = {
        "dataset": dataset.fingerprint,
        "chunking": config.chunking.model_dump(),
        "embedding": config.embedding.model_id(),
        "bm25": config.bm25.model_dump(),
        "jsonl": config.ingest.jsonl.model_dump(),
    }
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=8).hexdigest()


def ensure_index(dataset: BeirDataset, config: RagConfig, cache_dir: Path, progress: Progress | None = None) -> tuple[Path, float]:
    """The cached index for this dataset and indexing config, built or refreshed incrementally."""
    folder = cache_dir / f"{dataset.name}-{indexing_key(dataset, config)}"
    started = time.perf_counter()
    with Index.open(folder, config, writable=True) as index:
        Ingestor(index, progress).ingest([str(dataset.corpus)])
    return folder, time.perf_counter() - started


def evaluate_retrieval(
    dataset: BeirDataset,
    configs: dict[str, RagConfig],
    cache_dir: Path,
    out: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every config over every judged query; return the summary (and write a run folder if `out`)."""
    writer = RunWriter(out, "retrieval", {"dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint, "queries": len(dataset.queries)}, "configs": list(configs)}) if out else None
    summary: dict[str, Any] = {"dataset": dataset.name, "queries": len(dataset.queries), "configs": {}}
    for name, config in configs.items():
        if writer:
            writer.write_config(name, config.public_dict())
        index_dir, index_seconds = ensure_index(dataset, config, cache_dir, progress)
        run, seconds = _search_all(index_dir, config, dataset, progress, name)
        per_query = retrieval_metrics(run, dataset.qrels)
        if writer:
            for query_id, metrics in per_query.items():
                top = sorted(run.get(query_id, {}).items(), key=lambda kv: -kv[1])[:10]
                writer.write_row(query_id, {"config": name, "query": dataset.queries[query_id], "metrics": metrics,
                                  "retrieved": [doc for doc, _ in top], "relevant": sorted(dataset.qrels[query_id])})
        summary["configs"][name] = {
            "metrics": mean_metrics(per_query),
            "index_seconds": round(index_seconds, 2),
            "search_seconds": round(seconds, 2),
            "index": str(index_dir),
        }
    if writer:
        summary["run_dir"] = str(writer.finish(summary))
    return summary


def _search_all(index_dir: Path, config: RagConfig, dataset: BeirDataset, progress: Progress | None, name: str) -> tuple[dict[str, dict[str, float]], float]:
    retrieval = config.retrieval.model_copy(
        update={
            "dense_top_k": CHUNK_CANDIDATES if config.retrieval.dense_top_k else 0,
            "bm25_top_k": CHUNK_CANDIDATES if config.retrieval.bm25_top_k else 0,
            "top_k": CHUNK_CANDIDATES,
        }
    )
    label = f"Searching ({name})"
    sink = progress or Progress()
    sink.phase(label, len(dataset.queries))
    run: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    root = dataset.corpus.resolve().parent
    with Index.open(index_dir, config) as index:
        searcher = HybridSearcher(index, retrieval)
        for query_id, text in dataset.queries.items():
            ranked: dict[str, float] = {}
            for position, scored in enumerate(searcher.search([text], limit=CHUNK_CANDIDATES, access=Access.unrestricted()).chunks):
                document = Path(scored.chunk.source).relative_to(root).as_posix() if dataset.by_source else scored.chunk.doc_id
                if document not in ranked and len(ranked) < DEPTH:
                    ranked[document] = float(CHUNK_CANDIDATES - position)
            run[query_id] = ranked
            sink.advance(label)
    return run, time.perf_counter() - started
