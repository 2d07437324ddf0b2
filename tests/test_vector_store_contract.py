"""One contract every vector store must pass, run against embedded Chroma and a real `chroma run` server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.index.vector_store import ChromaVectorStore, open_chroma
from tests.helpers import free_port

DIM = 8



@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server process on 127.0.0.1, stopped after the module's tests."""
    executable = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(executable).exists():
        pytest.skip("the `chroma` CLI (from the chromadb package) is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    process = subprocess.Popen(
        [executable, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail("chroma run exited during start-up")
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("chroma server did not start within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(params=["embedded", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorStore:
    name = f"contract-{request.node.name[:20].replace('[', '-').replace(']', '')}-{time.time_ns() % 10**9}"
    if request.param == "embedded":
        return open_chroma(tmp_path, None, name)
    return open_chroma(tmp_path, request.getfixturevalue("chroma_server"), name)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return _unit(np.random.default_rng(seed).normal(size=(n, DIM)))


def _meta(i: int) -> dict[str, str | int]:
    return {"source": f"/docs/{i % 3}.md", "doc_id": f"d{i}", "file_type": "markdown", "start": 0, "end": 10}


def test_upsert_then_ids_and_count(store: ChromaVectorStore) -> None:
    ids = [f"c{i}" for i in range(20)]
    store.upsert(ids, _vectors(20), [_meta(i) for i in range(20)])
    assert store.ids() == set(ids)
    assert store.count() == 20


def test_upsert_is_idempotent(store: ChromaVectorStore) -> None:
    ids = [f"c{i}" for i in range(5)]
    store.upsert(ids, _vectors(5), [_meta(i) for i in range(5)])
    store.upsert(ids, _vectors(5, seed=1), [_meta(i) for i in range(5)])
    assert store.count() == 5


def test_query_returns_nearest_first_with_cosine_scores(store: ChromaVectorStore) -> None:
    vectors = _vectors(30)
    ids = [f"c{i}" for i in range(30)]
    store.upsert(ids, vectors, [_meta(i) for i in range(30)])
    hits = store.query(vectors[7], k=5)
    assert hits[0][0] == "c7"
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    expected = sorted(range(30), key=lambda i: -float(vectors[i] @ vectors[7]))[:5]
    assert [chunk_id for chunk_id, _ in hits] == [f"c{i}" for i in expected]


def test_query_with_metadata_filter(store: ChromaVectorStore) -> None:
    store.upsert([f"c{i}" for i in range(9)], _vectors(9), [_meta(i) for i in range(9)])
    hits = store.query(_vectors(1, seed=5)[0], k=9, where={"source": "/docs/1.md"})
    assert {chunk_id for chunk_id, _ in hits} == {"c1", "c4", "c7"}


def test_get_vectors_returns_the_stored_vectors_of_existing_ids(store: ChromaVectorStore) -> None:
    vectors = _vectors(6)
    store.upsert([f"c{i}" for i in range(6)], vectors, [_meta(i) for i in range(6)])
    ids, matrix = store.get_vectors(["c4", "c1", "missing-id"])
    assert sorted(ids) == ["c1", "c4"]
    for chunk_id, row in zip(ids, matrix):
        assert row == pytest.approx(vectors[int(chunk_id[1:])], abs=1e-6)


def test_delete_removes_only_given_ids(store: ChromaVectorStore) -> None:
    store.upsert([f"c{i}" for i in range(6)], _vectors(6), [_meta(i) for i in range(6)])
    store.delete(["c1", "c3", "missing-id"])
    assert store.ids() == {"c0", "c2", "c4", "c5"}


def test_batches_larger_than_the_server_limit_are_split(store: ChromaVectorStore) -> None:
    n = store._max_batch + 10
    ids = [f"c{i}" for i in range(n)]
    store.upsert(ids, _vectors(n), [_meta(i) for i in range(n)])
    assert store.count() == n
    store.delete(ids)
    assert store.count() == 0


def test_empty_store_query_and_drop(store: ChromaVectorStore) -> None:
    assert store.query(_vectors(1)[0], k=3) == []
    store.upsert(["a"], _vectors(1), [_meta(0)])
    store.drop()
    assert store.count() == 0 and store.ids() == set()


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


def test_query_for_more_than_the_store_holds_returns_everything(store: ChromaVectorStore) -> None:
    vectors = _vectors(3, seed=11)
    store.upsert(["a", "b", "c"], vectors, [{"source": "/docs/x.md"}] * 3)
    hits = store.query(vectors[0], k=50)
    assert sorted(chunk_id for chunk_id, _ in hits) == ["a", "b", "c"] and hits[0][0] == "a"
