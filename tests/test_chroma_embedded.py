"""Embedded Chroma driven through its engine (rag.index.chroma_embedded) is the same index as chromadb's own
PersistentClient writes and reads, holds one engine per folder, refuses bad input clearly, and keeps `chromadb`
out of `rag ingest` / `rag ask` processes. The contract suite itself runs in test_vector_store_contract.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.index import chroma_embedded
from rag.index.chroma_embedded import EmbeddedChromaClient
from rag.index.vector_store import open_chroma
from rag.testing.vector_store import metadata, random_vectors

COSINE = {"hnsw:space": "cosine"}
NAME = "chunks-under-test"


def chromadb_client(folder: Path) -> Any:
    """chromadb's own embedded client, as today's main opened an index (closed by the caller)."""
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))


def contents(collection: Any, query: np.ndarray) -> dict[str, Any]:
    """Ids, vectors and metadatas (by id) and a query's hits, read through either client's collection."""
    got = collection.get(include=["embeddings", "metadatas"])
    order = np.argsort(got["ids"])
    found = collection.query(query_embeddings=[query], n_results=5, include=["distances"])
    return {
        "ids": [got["ids"][i] for i in order],
        "vectors": np.asarray(got["embeddings"], dtype=np.float32)[order],
        "metadatas": [got["metadatas"][i] for i in order],
        "hits": list(zip(found["ids"][0], np.round(found["distances"][0], 5))),
    }


def chromadb_view(folder: Path, query: np.ndarray) -> dict[str, Any]:
    """What chromadb's own client reads from `folder`, with the collection's stored description."""
    client = chromadb_client(folder)
    try:
        collection = client.get_collection(NAME)
        described = {"configuration": collection._model.configuration_json, "schema": collection._model.serialized_schema}
        return {**contents(collection, query), **described, "metadata": collection.metadata}
    finally:
        client.close()


def engine_view(folder: Path, query: np.ndarray) -> dict[str, Any]:
    """The same contents, read through the engine adapter."""
    client = EmbeddedChromaClient(folder)
    try:
        return contents(client.get_or_create_collection(name=NAME, metadata=COSINE, embedding_function=None), query)
    finally:
        client.close()


def assert_same_contents(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["ids"] == b["ids"] and a["metadatas"] == b["metadatas"] and a["hits"] == b["hits"]
    assert np.array_equal(a["vectors"], b["vectors"])


def test_an_index_written_by_chromadbs_client_is_read_queried_and_updated_through_the_engine(tmp_path: Path) -> None:
    folder = tmp_path / "chroma"
    vectors = random_vectors(40)
    client = chromadb_client(folder)
    client.get_or_create_collection(name=NAME, metadata=COSINE, embedding_function=None).upsert(
        ids=[f"c{i}" for i in range(40)], embeddings=vectors, metadatas=[metadata(i) for i in range(40)]
    )
    client.close()
    query = vectors[3]
    assert_same_contents(engine_view(folder, query), chromadb_view(folder, query))

    engine = EmbeddedChromaClient(folder)
    collection = engine.get_or_create_collection(name=NAME, metadata=COSINE, embedding_function=None)
    collection.delete(ids=["c3", "c4"])
    collection.upsert(ids=["new"], embeddings=random_vectors(1, seed=9), metadatas=[metadata(1)])
    engine.close()
    seen = chromadb_view(folder, query)
    assert "new" in seen["ids"] and "c3" not in seen["ids"] and len(seen["ids"]) == 39
    assert_same_contents(engine_view(folder, query), seen)


def test_a_collection_created_through_the_engine_is_the_one_chromadbs_client_would_create(tmp_path: Path) -> None:
    """Same configuration JSON, schema and metadata as chromadb's Python layer writes for our cosine collection,
    and chromadb's client reads the same contents and query results from it."""
    vectors = random_vectors(30, seed=2)
    ids = [f"c{i}" for i in range(30)]
    theirs = chromadb_client(tmp_path / "theirs")
    theirs.get_or_create_collection(name=NAME, metadata=COSINE, embedding_function=None).upsert(
        ids=ids, embeddings=vectors, metadatas=[metadata(i) for i in range(30)]
    )
    theirs.close()
    store = open_chroma(tmp_path / "ours", None, NAME)
    store.upsert(ids, vectors, [metadata(i) for i in range(30)])
    store.close()

    ours_seen = chromadb_view(tmp_path / "ours" / "chroma", vectors[5])
    theirs_seen = chromadb_view(tmp_path / "theirs", vectors[5])
    assert ours_seen["configuration"] == theirs_seen["configuration"]
    assert ours_seen["configuration"]["hnsw"]["space"] == "cosine"
    assert ours_seen["schema"] == theirs_seen["schema"]
    assert ours_seen["metadata"] == theirs_seen["metadata"] == COSINE
    assert_same_contents(ours_seen, theirs_seen)
    assert ours_seen["hits"][0][0] == "c5"


# What rag.index.chroma_embedded relies on, as chromadb 1.5's `chromadb/api/rust.py` calls it.
ENGINE_SIGNATURES = {
    "Bindings": "(allow_reset, sqlite_db_config, hnsw_cache_size, persist_path=None)",
    "SqliteDBConfig": "(hash_type, migration_mode, url=None)",
    "create_collection": "($self, name, configuration_json_str=None, schema_str=None, metadata=None, get_or_create=False, tenant=..., database=...)",
    "delete_collection": "($self, name, tenant, database)",
    "get_max_batch_size": "($self)",
    "upsert": "($self, collection_id, ids, embeddings, metadatas=None, documents=None, uris=None, tenant=..., database=...)",
    "delete": "($self, collection_id, ids=None, where=..., where_document=None, limit=None, tenant=..., database=...)",
    "get": "($self, collection_id, ids=None, where=..., limit=None, offset=0, where_document=None, include=..., tenant=..., database=...)",
    "count": "($self, collection_id, tenant=..., database=...)",
    "query": "($self, collection_id, ids, query_embeddings, n_results, where=..., where_document=None, include=..., tenant=..., database=...)",
}


def test_the_engine_signatures_we_call_are_unchanged() -> None:
    import chromadb_rust_bindings as engine
    from importlib.metadata import version

    def signature(name: str) -> str | None:
        target = getattr(engine, name, None) if name in ("Bindings", "SqliteDBConfig") else getattr(engine.Bindings, name, None)
        return getattr(target, "__text_signature__", None)

    changed = {name: signature(name) for name, expected in ENGINE_SIGNATURES.items() if signature(name) != expected}
    assert not changed, (
        f"chromadb_rust_bindings (chromadb {version('chromadb')}) changed these signatures: {changed}. "
        "Update rag/index/chroma_embedded.py to call them as that version's chromadb/api/rust.py does, then "
        "ENGINE_SIGNATURES here and the chromadb pin in pyproject.toml"
    )
    assert hasattr(engine.MigrationHash, "MD5") and hasattr(engine.MigrationMode, "Apply")


def test_wrong_dimensions_and_duplicate_ids_are_refused_clearly(tmp_path: Path) -> None:
    store = open_chroma(tmp_path, None, NAME)
    store.upsert(["a", "b"], random_vectors(2), [metadata(0), metadata(1)])
    with pytest.raises(Exception, match="expecting embedding with dimension of 8, got 5") as caught:
        store.upsert(["c"], np.ones((1, 5), dtype=np.float32), [metadata(2)])
    assert type(caught.value).__name__ == "InvalidArgumentError"
    with pytest.raises(Exception, match="expecting embedding with dimension of 8, got 3"):
        store.query(np.ones(3, dtype=np.float32), k=2)
    with pytest.raises(ValueError, match="duplicates of: d"):
        store.upsert(["d", "d"], random_vectors(2), [metadata(0), metadata(1)])
    with pytest.raises(Exception, match="NaN"):
        store.upsert(["e"], np.full((1, 8), np.nan, dtype=np.float32), [metadata(0)])
    assert store.ids() == {"a", "b"}
    store.close()


def test_one_engine_per_folder_refreshed_rereads_it_and_the_newest_close_releases_it(tmp_path: Path) -> None:
    first = open_chroma(tmp_path, None, NAME)
    second = open_chroma(tmp_path, None, NAME)
    first.upsert(["a"], random_vectors(1), [metadata(0)])
    assert second.ids() == {"a"}  # one in-memory state: no refresh needed within the process
    folder = str((tmp_path / "chroma").resolve())
    assert first._client._engine is second._client._engine is chroma_embedded._ENGINES[folder]

    code = (
        "import sys; from pathlib import Path; from rag.index.vector_store import open_chroma\n"
        "from rag.testing.vector_store import metadata, random_vectors\n"
        f"s = open_chroma(Path(sys.argv[1]), None, {NAME!r}); s.upsert(['b'], random_vectors(1, seed=3), [metadata(1)]); s.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    fresh = second.refreshed()
    assert fresh.ids() == {"a", "b"} and second.ids() == {"a", "b"}  # the old handle works on the re-read state
    first.close()
    second.close()  # handed its hold over to `fresh`: releases nothing
    assert fresh.count() == 2
    fresh.close()
    assert folder not in chroma_embedded._ENGINES
    with pytest.raises(RuntimeError, match="closed"):
        fresh.count()


class Watched:
    """A real engine whose `get_max_batch_size` can be held in flight; logs its calls and when it is dropped."""

    def __init__(self, folder: str, number: int, log: list[str], hold: threading.Event | None) -> None:
        self._engine = START_ENGINE(folder)
        self._number, self._log, self._hold = number, log, hold
        log.append(f"start {number}")
        weakref.finalize(self, log.append, f"drop {number}")  # no reference to it is left anywhere

    def get_max_batch_size(self) -> int:
        self._log.append(f"call in {self._number}")
        if self._hold is not None and self._hold.is_set():
            HELD.set()
            RELEASE.wait(timeout=60)
        self._log.append(f"call out {self._number}")
        return int(self._engine.get_max_batch_size())

    def __getattr__(self, method: str) -> Any:
        return getattr(self._engine, method)


START_ENGINE = chroma_embedded._start_engine
HELD, RELEASE = threading.Event(), threading.Event()


def test_a_restart_waits_for_the_calls_in_flight_and_holds_new_calls_until_it_is_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two engines on one folder must never overlap: the old engine is dropped only once the call running on it
    has returned, and a call made while the restart waits runs on the new engine."""
    log: list[str] = []
    holding = threading.Event()
    started = iter(range(1, 10))
    monkeypatch.setattr(chroma_embedded, "_start_engine", lambda folder: Watched(folder, next(started), log, holding))
    HELD.clear(), RELEASE.clear()
    client = EmbeddedChromaClient(tmp_path)
    holding.set()
    in_flight = threading.Thread(target=client.get_max_batch_size)
    in_flight.start()
    assert HELD.wait(timeout=60)
    holding.clear()
    engine = client._engine
    successor: list[EmbeddedChromaClient] = []
    restart = threading.Thread(target=lambda: successor.append(client.refreshed()))
    restart.start()
    wait_until(lambda: engine._replacing, "the restart to begin waiting")  # type: ignore[union-attr]
    later = threading.Thread(target=client.get_max_batch_size)
    later.start()
    assert restart.is_alive() and later.is_alive() and log == ["start 1", "call in 1"]
    RELEASE.set()
    for thread in (in_flight, restart, later):
        thread.join(timeout=60)
    assert log == ["start 1", "call in 1", "call out 1", "drop 1", "start 2", "call in 2", "call out 2"]
    client.close()
    successor[0].close()  # the newest client holds the folder: its close drops the engine
    assert log[-1] == "drop 2"


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_folder_chromadbs_client_holds_in_this_process_is_refused(tmp_path: Path) -> None:
    client = chromadb_client(tmp_path / "chroma")
    try:
        with pytest.raises(RuntimeError, match="already holds"):
            open_chroma(tmp_path, None, NAME)
    finally:
        client.close()
    open_chroma(tmp_path, None, NAME).close()


IMPORTED = re.compile(r"\|\s*chromadb(\.|$)")


def imported_chromadb(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The `chromadb` modules a run (and its child processes) imported, from PYTHONPROFILEIMPORTTIME's report."""
    lines = [line for line in run.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "no import-time report: PYTHONPROFILEIMPORTTIME did not reach the process"
    return [line for line in lines if IMPORTED.search(line.rstrip())]


def test_rag_ingest_and_ask_on_an_embedded_index_never_import_chromadb(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "leave.md").write_text("# Leave\n\nNew employees get 20 vacation days per year.\n")
    (corpus / "travel.txt").write_text("Hotel rooms in high-cost cities are capped at 350 dollars per night.\n")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "HF_HUB_OFFLINE": "1"}

    def rag(*args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run([sys.executable, "-m", "rag", *args, "--index", str(tmp_path / "index")], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stderr[-3000:]
        assert imported_chromadb(run) == [], f"`rag {args[0]}` imported chromadb"
        return run

    assert "2 new" in rag("ingest", str(corpus)).stdout
    (corpus / "travel.txt").write_text("Hotel rooms in high-cost cities are capped at 400 dollars per night.\n")
    assert "1 changed" in rag("ingest", str(corpus)).stdout
    assert "400 dollars" in rag("ask", "What is the hotel cap per night?").stdout
