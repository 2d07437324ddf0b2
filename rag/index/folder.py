"""The folder backend: an index is a folder holding a SQLite manifest, the vectors (embedded Chroma under
`chroma/`, or a Chroma server), the BM25 index's segments and versions under `bm25/`, `embeddings.sqlite` and `keys.sqlite`.

Writers take an exclusive file lock (`.write.lock`), so one process writes at a time.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

from rag.config import BM25Config, VectorStoreBase
from rag.core.registry import VECTOR_STORES
from rag.errors import RagError
from rag.index.bm25 import BM25Index, Segment, State, assemble, catch_up
from rag.index.contracts import Catalog, Embedder, EmbeddingCache, KeyStore, LexicalStore, StorePlace, VectorStore, WriteLock

MANIFEST_FILE = "manifest.sqlite"
EMBEDDING_CACHE_FILE = "embeddings.sqlite"
LOCK_FILE = ".write.lock"
BM25_FOLDER = "bm25"
UPLOADS_FOLDER = "uploads"


class FolderBackend:
    """An index kept in one folder on this machine (the default)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location = str(directory)

    def exists(self) -> bool:
        return (self.directory / MANIFEST_FILE).is_file()

    def lock_writer(self) -> WriteLock:
        from filelock import FileLock, Timeout

        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.directory / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RagError(
                f"another process is writing to the index {self.directory}",
                "wait for that ingest or removal to finish, then run this again",
            ) from None
        return lock

    def open_catalog(self) -> Catalog:
        from rag.index.manifest import Manifest

        return Manifest(self.directory / MANIFEST_FILE)

    def open_vectors(self, config: VectorStoreBase, catalog: Catalog) -> VectorStore:
        place = StorePlace(folder=self.directory, collection=f"rag-{catalog.get_meta('index_id')}")
        factory = VECTOR_STORES.resolve(config.kind)
        store: VectorStore = factory(config, place)
        return store

    def lexical_store(self) -> LexicalStore:
        return FolderBM25(self.directory / BM25_FOLDER)

    def embedding_cache(self, inner: Embedder) -> EmbeddingCache:
        from rag.index.embedders.cache import CachedEmbedder

        return CachedEmbedder(inner, self.directory / EMBEDDING_CACHE_FILE)

    def key_store(self) -> KeyStore:
        from rag.index.keys import SqliteKeyStore

        return SqliteKeyStore(self.directory)

    def uploads_dir(self) -> Path:
        return self.directory / UPLOADS_FOLDER


class FolderBM25:
    """BM25 saved as segment folders `bm25/<segment>/` plus one state file `bm25/<version>.json` per version (its
    segments and their dead chunks); the catalog's meta `bm25_generation` names the current version, so a crash
    mid-save never leaves a torn index. A refresh tokenises only the chunks committed since the last one
    (`rag.index.bm25.catch_up`) and writes only the new segments.
    """

    _segments: dict[Path, Segment] = {}  # immutable segments already read by this process, by folder
    _lock = threading.Lock()

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def generation(self, catalog: Catalog) -> str | None:
        return catalog.get_meta("bm25_generation")

    def refresh(self, catalog: Catalog, config: BM25Config) -> bool:
        """Bring BM25 up to the catalog's chunks; True if it changed (nothing is read when no commit happened)."""
        version = catalog.get_meta("bm25_generation")
        state = self._state(version)
        settings = config.model_dump_json()
        if state is not None and state.settings == settings and state.catalog_generation == catalog.generation():
            return False
        current = self._assemble(state, config) if state is not None and state.settings == settings else None
        index = catch_up(current, catalog, config)
        names = {id(segment): name for segment, name in zip(current.segments, state.names)} if current and state else {}
        version = uuid.uuid4().hex
        self.folder.mkdir(parents=True, exist_ok=True)
        index.save(self.folder, [names.get(id(s)) or uuid.uuid4().hex for s in index.segments], self.folder / f"{version}.json", catalog.generation())
        catalog.set_meta("bm25_generation", version)
        self._remove_unused(version)
        return index is not current

    def load(self, catalog: Catalog, config: BM25Config) -> BM25Index:
        state = self._state(catalog.get_meta("bm25_generation"))
        if state is None:
            if catalog.get_meta("bm25_generation") is None:
                raise RagError(f"the BM25 index in {self.folder.parent} is missing", "run `rag ingest` again to rebuild it")
            # an index saved before segments existed: built in memory until the next ingest saves segments
            return catch_up(None, catalog, config)
        return self._assemble(state, config)

    def _state(self, version: str | None) -> State | None:
        path = self.folder / f"{version}.json"
        try:
            return State.read(path) if version else None
        except FileNotFoundError:
            return None

    def _assemble(self, state: State, config: BM25Config) -> BM25Index:
        with self._lock:
            segments = []
            for name in state.names:
                path = self.folder / name
                if path not in self._segments:
                    self._segments[path] = Segment.load(path)
                segments.append(self._segments[path])
            for path in [p for p in self._segments if p.parent == self.folder and p.name not in state.names]:
                del self._segments[path]
        return assemble(config, segments, state.dead)

    def _remove_unused(self, version: str) -> None:
        keep = {f"{version}.json", *State.read(self.folder / f"{version}.json").names}  # just saved: it is there
        for entry in self.folder.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
