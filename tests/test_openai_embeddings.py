"""Embeddings from an OpenAI-compatible endpoint (a real HTTP server on 127.0.0.1), with the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from tests.fake_openai import DIMENSIONS, FakeOpenAI, bag_of_words_vector
from tests.helpers import assert_index_consistent, fake_endpoint_config, free_port


def endpoint_config(base_url: str, *extra: str):
    return fake_endpoint_config(base_url, "embedding.batch_size=2", *extra)


def test_ingest_through_endpoint_batches_and_caches(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"d{i}.txt").write_text(f"Paragraph about topic {i}.\n\nAnother paragraph {i} about lunch menus.")
    with FakeOpenAI() as server:
        with Index.open(tmp_path / "index", endpoint_config(server.base_url), writable=True) as index:
            report = Ingestor(index).ingest([str(corpus)])
            ids = assert_index_consistent(index)
            assert report.texts_embedded == len(ids) == len(server.embedded_texts())
            assert all(len(r["body"]["input"]) <= 2 for r in server.requests)  # batch_size honoured
            assert {r["body"]["model"] for r in server.requests} == {"fake-embed"}
            chunk = index.manifest.chunks_by_id(sorted(ids))[0]
            hit = index.vectors.query(np.array(bag_of_words_vector(chunk.text), dtype=np.float32), 1)
            assert hit[0][0] == chunk.chunk_id and hit[0][1] == pytest.approx(1.0, abs=1e-4)
        calls = len(server.requests)
        (corpus / "d0.txt").write_text("Paragraph about topic 0.\n\nA new paragraph on parking.")
        with Index.open(tmp_path / "index", endpoint_config(server.base_url), writable=True) as index:
            again = Ingestor(index).ingest([str(corpus)])
        new_texts = server.embedded_texts()[len(server.embedded_texts()) - again.texts_embedded :]
        assert again.changed == 1 and 0 < again.texts_embedded <= 2
        assert len(server.requests) > calls and all("parking" in t or "topic 0" in t for t in new_texts)


def test_vector_dimension_follows_the_endpoint(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello world")
    with FakeOpenAI() as server:
        with Index.open(tmp_path / "index", endpoint_config(server.base_url), writable=True) as index:
            vectors = index.embedder.embed(["hello world"])
    assert vectors.shape == (1, DIMENSIONS)


def test_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    config = endpoint_config(f"http://127.0.0.1:{port}/v1", "embedding.timeout_s=2")
    with Index.open(tmp_path / "index", config, writable=True) as index:
        with pytest.raises(RagError) as caught:
            index.embedder.embed(["hello"])
    assert "cannot reach the embedding endpoint" in caught.value.message
    assert "embedding.base_url" in caught.value.hint


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    with FakeOpenAI(api_key="right") as server:
        with Index.open(tmp_path / "index", endpoint_config(server.base_url), writable=True) as index:
            with pytest.raises(RagError) as caught:
                index.embedder.embed(["hello"])
    assert "HTTP 401" in caught.value.message
