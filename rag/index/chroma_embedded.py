"""Embedded Chroma without chromadb's Python client: its engine, `chromadb_rust_bindings`, driven directly.

Why: `import chromadb` costs about 350-380 ms in every process (its client imports every embedding function,
OpenTelemetry and gRPC), a third of re-ingesting one changed file into 100,000 chunks; the engine, a top-level
extension module shipped in the chromadb wheel, imports in about 25 ms. chromadb's own embedded client is a thin
shim over the same engine (`chromadb/api/rust.py`, `RustBindingsAPI`); this module does what that shim does for a
`chromadb.PersistentClient(path, Settings(anonymized_telemetry=False))` and our cosine collection: sqlite at
`<path>/chroma.sqlite3`, migrations applied with md5 hashes, the HNSW cache sized as chromadb sizes it, the default
tenant and database, no telemetry, and `create_collection(name, None, None, {"hnsw:space": "cosine"}, ...)`
exactly as chromadb's Python layer calls it (no configuration or schema: the engine writes its defaults). A folder
is therefore the same index whichever client wrote it (tests/test_chroma_embedded.py checks both directions).

One engine per folder per process. An engine holds its own in-memory state of the folder (each collection's HNSW
index, the log positions it has applied) and persists it to the same segment files and sqlite rows; two engines on
one folder in one process would each write their own copy over the other's, losing vectors or leaving the HNSW
files out of step with sqlite. So every client of a folder shares one `_Engine`: `refreshed()` replaces its engine
in place (once the calls in flight have returned, the old one dropped before the new one starts) so that it
re-reads the folder, and the last client's `close()` drops it, releasing the files. For the same reason a folder
that chromadb's own PersistentClient holds open in this process is refused. Other processes are the business of
the index's write lock, as before.

The engine's method signatures are tied to chromadb's version (pyproject pins `chromadb>=1.5,<1.6`);
tests/test_chroma_embedded.py fails, saying what to update, when they change. Bad input is refused by the engine
with chromadb's own exceptions (`chromadb.errors.InvalidArgumentError` for a wrong dimension or a NaN, ...; only
then is `chromadb` imported); duplicate ids, which chromadb's Python layer refused before the engine saw them, are
refused here.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EmbeddedChromaClient", "EmbeddedCollection"]

TENANT = "default_tenant"  # chromadb.config.DEFAULT_TENANT
DATABASE = "default_database"  # chromadb.config.DEFAULT_DATABASE


def _hnsw_cache_size() -> int:
    """As `RustBindingsAPI.__init__` computes it: each HNSW index has 4 data files and 1 metadata file."""
    if sys.platform == "win32":
        import ctypes

        return int(ctypes.windll.msvcrt._getmaxstdio()) // 5
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 5


def _start_engine(folder: str) -> Any:
    """A new engine on `folder`, as `RustBindingsAPI.start` builds it for a PersistentClient's default settings."""
    import chromadb_rust_bindings as engine

    sqlite = engine.SqliteDBConfig(
        hash_type=engine.MigrationHash.MD5, migration_mode=engine.MigrationMode.Apply, url=f"{folder}/chroma.sqlite3"
    )
    return engine.Bindings(
        allow_reset=False, sqlite_db_config=sqlite, persist_path=folder, hnsw_cache_size=_hnsw_cache_size()
    )


class _Engine:
    """The one engine of a folder in this process; calls go through `call()` so a restart never overlaps them."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.clients = 0
        self._state = threading.Condition()
        self._calls = 0
        self._replacing = False
        self._bindings: Any = _start_engine(folder)

    def call(self, method: str, *args: Any) -> Any:
        """`method` of the engine; no reference to it outlives the call (see `replace`)."""
        with self._state:
            self._state.wait_for(lambda: not self._replacing)
            if self._bindings is None:
                raise RuntimeError(f"embedded Chroma at {self.folder} was closed")
            self._calls += 1
            bindings = self._bindings
        try:
            return getattr(bindings, method)(*args)
        finally:
            del bindings
            with self._state:
                self._calls -= 1
                self._state.notify_all()

    def replace(self, start_new: bool) -> None:
        """Drop the engine once no call is in flight, then start a new one (re-reads the folder) if asked.
        `_replacing` keeps new calls out while the restart waits, so a steady stream of calls cannot starve it."""
        with self._state:
            self._state.wait_for(lambda: not self._replacing)
            self._replacing = True
            self._state.wait_for(lambda: self._calls == 0)
            try:
                self._bindings = None  # the only reference: the old engine is gone before a new one starts
                self._bindings = _start_engine(self.folder) if start_new else None
            finally:
                self._replacing = False
                self._state.notify_all()


_ENGINES: dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _refuse_if_chromadb_holds(folder: str) -> None:
    """A PersistentClient of chromadb's on this folder in this process would be a second engine."""
    shared = sys.modules.get("chromadb.api.shared_system_client")
    if shared is None:
        return
    for identifier in list(shared.SharedSystemClient._identifier_to_system):
        if Path(identifier).resolve() == Path(folder):
            raise RuntimeError(
                f"chromadb.PersistentClient already holds {folder} in this process: close it "
                "(client.close()) before opening the index, two engines on one folder overwrite each other's files"
            )


class EmbeddedChromaClient:
    """What `ChromaVectorStore` uses of a chromadb client, for the folder `path` (created if missing)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        folder = str(path.resolve())
        with _ENGINES_LOCK:
            engine = _ENGINES.get(folder)
            if engine is None:
                _refuse_if_chromadb_holds(folder)
                engine = _ENGINES[folder] = _Engine(folder)
            engine.clients += 1
        self._engine: _Engine | None = engine
        self._engine_hold = True

    def refreshed(self) -> "EmbeddedChromaClient":
        """This folder's engine restarted, so that it re-reads the folder (other processes' writes), as a new
        client that takes over this one's hold: this one keeps working (on the same, re-read state) and its
        `close()` no longer releases anything, so closing the newest client releases the folder."""
        engine = self._live()
        engine.replace(start_new=True)
        successor = object.__new__(EmbeddedChromaClient)
        successor._engine, successor._engine_hold = engine, self._engine_hold
        self._engine_hold = False
        return successor

    def _live(self) -> _Engine:
        if self._engine is None:
            raise RuntimeError("this embedded Chroma client was closed")
        return self._engine

    def get_or_create_collection(
        self, name: str, metadata: dict[str, Any] | None = None, embedding_function: None = None
    ) -> "EmbeddedCollection":
        """As chromadb's client creates it with `embedding_function=None` (the engine never embeds: our vectors)."""
        if embedding_function is not None:
            raise ValueError("embedded Chroma here stores given vectors only: pass embedding_function=None")
        engine = self._live()
        model = engine.call("create_collection", name, None, None, metadata, True, TENANT, DATABASE)
        return EmbeddedCollection(engine, str(model.id), model.name)

    def get_max_batch_size(self) -> int:
        return int(self._live().call("get_max_batch_size"))

    def delete_collection(self, name: str) -> None:
        self._live().call("delete_collection", name, TENANT, DATABASE)

    def close(self) -> None:
        """Release this client; the last one of a folder drops its engine (database and index files). Idempotent."""
        engine, self._engine = self._engine, None
        if engine is None or not self._engine_hold:
            return
        self._engine_hold = False
        # the lock is held while the engine drops: a client opening the folder meanwhile starts the next one after
        with _ENGINES_LOCK:
            engine.clients -= 1
            if engine.clients > 0:
                return
            _ENGINES.pop(engine.folder, None)
            engine.replace(start_new=False)


class EmbeddedCollection:
    """What `ChromaVectorStore` uses of a chromadb collection; results are dicts keyed as chromadb's."""

    def __init__(self, engine: _Engine, collection_id: str, name: str) -> None:
        self._engine = engine
        self.id = collection_id
        self.name = name

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        id_list = list(ids)
        if len(set(id_list)) != len(id_list):
            repeated = sorted(i for i, n in Counter(id_list).items() if n > 1)[:5]
            raise ValueError(f"Expected IDs to be unique, found duplicates of: {', '.join(repeated)} in upsert.")
        rows = list(np.asarray(embeddings, dtype=np.float32))
        self._engine.call("upsert", self.id, id_list, rows, list(metadatas), None, None, TENANT, DATABASE)

    def delete(self, ids: Sequence[str]) -> None:
        self._engine.call("delete", self.id, list(ids), None, None, None, TENANT, DATABASE)

    def get(
        self, ids: Sequence[str] | None = None, include: Sequence[str] = (), limit: int | None = None, offset: int = 0
    ) -> dict[str, Any]:
        id_list = None if ids is None else list(ids)
        got = self._engine.call("get", self.id, id_list, None, limit, offset, None, list(include), TENANT, DATABASE)
        return {"ids": got.ids, "embeddings": got.embeddings, "metadatas": got.metadatas}

    def count(self) -> int:
        return int(self._engine.call("count", self.id, TENANT, DATABASE))

    def query(
        self, query_embeddings: Sequence[np.ndarray], n_results: int, where: dict[str, Any] | None = None, include: Sequence[str] = ()
    ) -> dict[str, Any]:
        rows = [np.asarray(row, dtype=np.float32) for row in query_embeddings]
        where_json = json.dumps(where) if where else None
        found = self._engine.call("query", self.id, None, rows, n_results, where_json, None, list(include), TENANT, DATABASE)
        return {"ids": found.ids, "distances": found.distances}
