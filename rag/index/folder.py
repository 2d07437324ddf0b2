"""The folder backend: an index is a folder holding a SQLite manifest, the vectors (embedded Chroma under
`chroma/`, or a Chroma server), the BM25 index in `bm25/<generation>/`, `embeddings.sqlite` and `keys.sqlite`.

Writers take an exclusive file lock (`.write.lock`), so one process writes at a time.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from rag.config import BM25Config, VectorStoreBase
from rag.core.registry import VECTOR_STORES
from rag.errors import RagError
from rag.index.bm25 import BM25Index
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
    """BM25 saved as `bm25/<generation>/`, the generation recorded in the catalog's meta.

    bm25s has no incremental update, but it indexes tens of thousands of chunks in seconds, so the index is
    rebuilt from the catalog's chunk texts and saved as a new generation folder; the catalog records which
    generation is current, so a crash mid-save never leaves a torn index.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def generation(self, catalog: Catalog) -> str | None:
        return catalog.get_meta("bm25_generation")

    def refresh(self, catalog: Catalog, config: BM25Config) -> bool:
        chunk_ids, texts = catalog.chunk_texts()
        generation = _generation(config, chunk_ids)
        if catalog.get_meta("bm25_generation") == generation and (self.folder / generation).is_dir():
            return False
        index = BM25Index(config)
        index.build(chunk_ids, texts)
        index.save(self.folder / generation)
        catalog.set_meta("bm25_generation", generation)
        for old in self.folder.iterdir():
            if old.name != generation:
                shutil.rmtree(old, ignore_errors=True)
        return True

    def load(self, catalog: Catalog, config: BM25Config) -> BM25Index:
        generation = catalog.get_meta("bm25_generation")
        folder = self.folder / str(generation)
        if generation is None or not folder.is_dir():
            raise RagError(f"the BM25 index in {self.folder.parent} is missing", "run `rag ingest` again to rebuild it")
        return BM25Index.load(folder, config)


def _generation(config: BM25Config, chunk_ids: list[str]) -> str:
    """Names a build by its settings and chunk set: an unchanged index is never rebuilt."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(config.model_dump_json().encode())
    for chunk_id in chunk_ids:
        digest.update(chunk_id.encode())
    return digest.hexdigest()
