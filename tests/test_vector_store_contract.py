"""The vector store contract (rag.testing.VectorStoreContract) run against embedded Chroma and a real `chroma run`
server, plus what only Chroma does (batch limits, server errors, a whole index on a server)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rag.index.vector_store import ChromaVectorStore, open_chroma
from rag.testing import VectorStoreContract
from rag.testing.vector_store import metadata, random_vectors
from tests.helpers import free_port


def _name(request: pytest.FixtureRequest) -> str:
    return f"contract-{request.node.name[:20].replace('[', '-').replace(']', '')}-{time.time_ns() % 10**9}"


class TestEmbeddedChroma(VectorStoreContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorStore:
        return open_chroma(tmp_path, None, _name(request))


class TestChromaServer(VectorStoreContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path, chroma_server: str) -> ChromaVectorStore:
        return open_chroma(tmp_path, chroma_server, _name(request))


@pytest.fixture(params=["embedded", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorStore:
    if request.param == "embedded":
        return open_chroma(tmp_path, None, _name(request))
    return open_chroma(tmp_path, request.getfixturevalue("chroma_server"), _name(request))


def test_batches_larger_than_the_server_limit_are_split(store: ChromaVectorStore) -> None:
    n = store._max_batch + 10
    ids = [f"c{i}" for i in range(n)]
    store.upsert(ids, random_vectors(n), [metadata(i) for i in range(n)])
    assert store.count() == n
    store.delete(ids)
    assert store.count() == 0


def test_unreachable_server_gives_a_clear_error(tmp_path: Path) -> None:
    from rag.errors import RagError

    with pytest.raises(RagError) as caught:
        open_chroma(tmp_path, f"http://127.0.0.1:{free_port()}", "nothing")
    assert "cannot reach the Chroma server" in caught.value.message
    assert "chroma run" in caught.value.hint


def test_ingest_and_search_through_a_chroma_server(chroma_server: str, tmp_path: Path) -> None:
    """The whole index works with vectors on a server: ingest, incremental re-ingest, search."""
    from rag.config import load_config
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor
    from rag.retrieve.access import Access
    from rag.retrieve.search import HybridSearcher
    from tests.helpers import assert_index_consistent

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "leave.md").write_text("# Leave\n\nNew employees get 20 vacation days per year.\n")
    (corpus / "travel.txt").write_text("Hotel rooms in high-cost cities are capped at 350 dollars per night.\n")
    config = load_config(None, [f"vector_store.url={chroma_server}", "vector_store.collection=server-ingest-test"])
    with Index.open(tmp_path / "index", config, writable=True) as index:
        first = Ingestor(index).ingest([str(corpus)])
        assert_index_consistent(index)
    with Index.open(tmp_path / "index", config, writable=True) as index:
        second = Ingestor(index).ingest([str(corpus)])
        assert_index_consistent(index)
        hits = HybridSearcher(index, config.retrieval).search(["what is the nightly hotel cap?"], access=Access.unrestricted()).chunks
    assert first.new == 2 and second.unchanged == 2 and second.texts_embedded == 0
    assert hits[0].source_display.endswith("travel.txt") and "dense" in hits[0].scores

