"""`Index`: one opened index backend, with its embedders, and the one place that notices committed changes.

Open with `Index.open(location, config)`: a folder path or a URL (see `rag.index.backends`); use it as a context
manager so the write lock and the stores are released. Readers call `sync()` (the searcher does, before every
search) to see what writers committed since: the vector store handle, the BM25 index and whatever was
registered with `on_change` follow the catalog's generation. Writes go through `rag.index.writer.IndexWriter`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from functools import cached_property

from pydantic import TypeAdapter

from rag.config import BM25Config, EmbeddingBase, EmbeddingSection, RagConfig
from rag.errors import RagError
from rag.index.backends import open_backend
from rag.index.bm25 import BM25Index
from rag.index.contracts import Catalog, Embedder, EmbeddingCache, IndexBackend, VectorStore, WriteLock
from rag.index.folder import EMBEDDING_CACHE_FILE, LOCK_FILE, MANIFEST_FILE
from rag.index.handles import VECTOR_HANDLES, SharedHandle

__all__ = ["EMBEDDING_CACHE_FILE", "LOCK_FILE", "MANIFEST_FILE", "Index"]

log = logging.getLogger(__name__)


class Index:
    """An open index. Attributes: `backend`, `location` (for messages), `config`, `manifest` (its `Catalog`)."""

    def __init__(self, backend: IndexBackend, config: RagConfig, writable: bool) -> None:
        self.backend = backend
        self.location = backend.location
        self.config = config
        self.writable = writable
        self._lock: WriteLock | None = backend.lock_writer() if writable else None
        try:
            self.manifest: Catalog = backend.open_catalog()
        except BaseException:
            self._release_lock()
            raise
        self._seen_generation = self.manifest.generation()
        self._listeners: list[Callable[[], None]] = []
        self._vectors: VectorStore | None = None
        self._writing = False
        self._bm25: BM25Index | None = None
        self.bm25_generation: str | None = None  # the lexical version `bm25()` returned last

    @classmethod
    def open(cls, location: str | os.PathLike[str], config: RagConfig, writable: bool = False, repair: bool = True) -> "Index":
        """`repair`: a reader that finds an abandoned write (a killed writer) repairs it when no writer is at work."""
        backend = open_backend(location)
        if not writable and not backend.exists():
            raise RagError(f"no index at {backend.location}", f"create one with `rag ingest PATH --index {backend.location}`")
        index = cls(backend, config, writable)
        if repair and not writable and index.needs_repair():
            index._repair_abandoned_write()
        return index

    def _repair_abandoned_write(self) -> None:
        """A writer killed before its BM25 refresh (SIGKILL, power loss) left the index dirty: when no writer holds
        the lock now, repair it here, so BM25 holds every committed chunk; while one does, its `finish` will."""
        from rag.index.writer import IndexWriter

        try:
            writable = Index(self.backend, self.config, writable=True)
        except RagError:
            return  # a writer is at work: its own finish (or the next writer) repairs
        except Exception as exc:  # read-only storage, a database role that may only read: search as it is
            log.warning("index %s needs a repair this reader cannot make (%s: %s); the next ingest makes it", self.location, type(exc).__name__, exc)
            return
        try:
            if writable.needs_repair():
                IndexWriter(writable).repair()
        except Exception as exc:  # the reader still works; BM25 may miss the last committed files until then
            log.warning("repairing index %s on open failed (%s: %s); the next ingest repairs it", self.location, type(exc).__name__, exc)
        finally:
            writable.close()
        self.sync()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "embedder" in self.__dict__:
            self.embedder.close()
        self.manifest.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- components, built on first use ----------------------------------------------------
    @cached_property
    def embedder(self) -> EmbeddingCache:
        """The configured model behind the index's embedding cache (for writing)."""
        from rag.index.embedders import build_embedder

        return self.backend.embedding_cache(build_embedder(self.config.embedding))

    @cached_property
    def query_embedder(self) -> Embedder:
        """The model the index was built with (from the recorded config), uncached: queries are one-offs."""
        from rag.index.embedders import build_embedder

        return build_embedder(self.indexed_embedding_config())

    def indexed_embedding_config(self) -> EmbeddingBase:
        recorded = self._recorded_section("embedding")
        if recorded is None:
            return self.config.embedding
        embedding: EmbeddingBase = TypeAdapter(EmbeddingSection).validate_python(recorded)
        embedding = self._model_that_built_the_vectors(embedding)
        return embedding.model_copy(update={"api_key": self.config.embedding.api_key})  # secrets are recorded masked

    @property
    def vectors(self) -> VectorStore:
        """This process's handle of the index's vector store, as fresh as the last `sync()`."""
        if self._vectors is None:
            self._vectors = self._shared.for_reader(self.manifest.generation(), self._open_vectors)
        return self._vectors

    def _open_vectors(self) -> VectorStore:
        return self.backend.open_vectors(self.config.vector_store, self.manifest)

    def _model_that_built_the_vectors(self, recorded: EmbeddingBase) -> EmbeddingBase:
        """The recorded config, made to name the local model whose id the index recorded (configs written before
        `precision` or `int8_recipe` existed leave them out: the current default would be the wrong model)."""
        from rag.core.bundled import INT8_RECIPES

        built_with = self.manifest.get_meta("embedding_model")
        variants = [{"precision": "fp32"}] + [{"precision": "int8", "int8_recipe": recipe} for recipe in INT8_RECIPES]
        for update in variants:
            candidate = recorded.model_copy(update=update)
            if candidate.model_id() == built_with != recorded.model_id():
                return candidate
        return recorded

    @cached_property
    def _shared(self) -> SharedHandle:
        """This store's handle, shared with every other `Index` of this process on the same store."""
        return VECTOR_HANDLES.get((self.location, self.manifest.get_meta("index_id"), self.config.vector_store.model_dump_json()))

    def check_writable(self) -> None:
        """RagError unless this index was opened to write (holding the write lock)."""
        if not self.writable:
            raise RagError(f"the index {self.location} was opened read-only", "open it with Index.open(..., writable=True) to write")

    def begin_write(self) -> VectorStore:
        """For `IndexWriter`: the handle writes go through, shared with this process's readers meanwhile."""
        self.check_writable()
        self._writing = True
        self._vectors = self._shared.begin_write(self.manifest.generation(), self._open_vectors)
        return self._vectors

    def end_write(self) -> None:
        self._shared.end_write(self.manifest.generation())
        self._writing = False

    def bm25(self) -> BM25Index:
        """The current BM25 index, reloaded when a writer has published a new version."""
        store = self.backend.lexical_store()
        generation = store.generation(self.manifest)
        if self._bm25 is None or generation != self.bm25_generation:
            try:
                self._bm25 = store.load(self.manifest, self._recorded_bm25())
                self.bm25_generation = generation
            except Exception:
                if self._bm25 is None:
                    raise
                # the version this snapshot names was already replaced on disk: keep the one we have
        return self._bm25

    def _recorded_bm25(self) -> BM25Config:
        recorded = self._recorded_section("bm25")
        return BM25Config.model_validate(recorded) if recorded is not None else self.config.bm25

    def _recorded_section(self, name: str) -> object | None:
        """A section of the config the index was last written with (None before the first write)."""
        recorded = self.manifest.get_meta("config")
        return json.loads(recorded)[name] if recorded else None

    # --- noticing committed changes -------------------------------------------------------
    def sync(self) -> bool:
        """Catch up with what writers committed since the last call (one cheap catalog read when nothing did).

        Inside a read snapshot (`begin_read`), "committed" means committed when the snapshot began. Returns
        True when the generation moved on; `on_change` callbacks ran then.
        """
        generation = self.manifest.generation()
        if self._vectors is not None and not self._writing:
            self._vectors = self._shared.for_reader(generation, self._open_vectors)
        if generation == self._seen_generation:
            return False
        self._seen_generation = generation
        for listener in self._listeners:
            listener()
        return True

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever `sync()` finds committed changes (e.g. to drop cached document texts)."""
        self._listeners.append(listener)

    def begin_read(self) -> None:
        """Start a read snapshot (every read sees one committed state until `end_read`) and catch up with it."""
        self.manifest.begin_read()
        try:
            self.sync()
        except BaseException:
            self.manifest.end_read()
            raise

    def end_read(self) -> None:
        self.manifest.end_read()

    # --- crash repair (done by `IndexWriter`) -------------------------------------------------
    def needs_repair(self) -> bool:
        return bool(self.manifest.pending()) or self.manifest.get_meta("dirty") == "1"
