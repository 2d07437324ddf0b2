"""Assertions shared by index tests."""

from __future__ import annotations

from rag.index.store import Index


def assert_index_consistent(index: Index) -> set[str]:
    """Manifest, vector store and BM25 hold exactly the same chunk ids; returns them."""
    manifest_ids = index.manifest.all_chunk_ids()
    assert index.vectors.ids() == manifest_ids
    assert index.vectors.count() == len(manifest_ids)
    bm25_ids = index.bm25().chunk_ids
    assert len(bm25_ids) == len(set(bm25_ids))
    assert set(bm25_ids) == manifest_ids
    assert not index.manifest.pending()
    for record in index.manifest.sources():
        assert len(index.manifest.chunk_ids_of(record.path)) == record.chunks
    return manifest_ids


def fake_endpoint_config(base_url: str, *extra: str):
    """A config whose embeddings come from the fake OpenAI-compatible server (tests/fake_openai.py)."""
    from rag.config import load_config

    return load_config(
        None,
        [
            "embedding.provider=openai",
            f"embedding.base_url={base_url}",
            "embedding.api_key=test-key",
            "embedding.model=fake-embed",
            "embedding.max_retries=0",
            *extra,
        ],
    )
