"""This project with its defaults: the ingestion pipeline `rag ingest` runs, and the default hybrid search."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from peers.common import CANDIDATE_CHUNKS


def ingest(corpus: Path, work: Path) -> dict:
    """Ingest into work/index; on an existing index this is the incremental re-ingest."""
    from rag.config import load_config
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    with Index.open(work / "index", load_config(), writable=True) as index:
        report = Ingestor(index).ingest([str(corpus)])
        chunks = index.manifest.chunk_count()
    if report.exit_code != 0:
        raise SystemExit(f"rag ingest reported failures: {report.to_json()}")
    return {"chunks": chunks, "embedded": report.texts_embedded}


def open_search(work: Path) -> Callable[[str], list[str]]:
    """Default hybrid search (query embedding + Chroma + BM25 + fusion), asked for the candidate depth."""
    from rag.config import load_config
    from rag.index.store import Index
    from rag.retrieve.access import Access
    from rag.retrieve.search import HybridSearcher

    depth = [f"retrieval.{key}={CANDIDATE_CHUNKS}" for key in ("top_k", "dense_top_k", "bm25_top_k")]
    config = load_config(None, depth)
    searcher = HybridSearcher(Index.open(work / "index", config), config.retrieval)
    return lambda query: [scored.chunk.doc_id for scored in searcher.search([query], limit=CANDIDATE_CHUNKS, access=Access.unrestricted()).chunks]
