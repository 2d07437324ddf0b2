"""`Index`: one folder holding the manifest, embedding cache, Chroma collection and BM25 index.

Writers take an exclusive file lock. Every vector-store change is journalled in the manifest
first and committed there after, so an interrupted writer leaves a state that `repair()` can
bring back into agreement: the manifest wins, extra vectors are deleted, missing ones restored.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rag.config import BM25Config, RagConfig
from rag.errors import RagError
from rag.index.bm25 import BM25Index
from rag.index.manifest import Manifest

MANIFEST_FILE = "manifest.sqlite"
EMBEDDING_CACHE_FILE = "embeddings.sqlite"
LOCK_FILE = ".write.lock"


@dataclass(slots=True)
class RepairReport:
    """What `repair()` had to fix after an interrupted write."""

    orphans_deleted: int = 0
    vectors_restored: int = 0
    bm25_rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.orphans_deleted or self.vectors_restored)


class Index:
    """Open with `Index.open(...)`; use as a context manager so the lock and databases are released."""

    def __init__(self, directory: Path, config: RagConfig, writable: bool) -> None:
        self.directory = directory
        self.config = config
        self._lock = None
        if writable:
            from filelock import FileLock, Timeout

            directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(directory / LOCK_FILE), timeout=0)
            try:
                self._lock.acquire()
            except Timeout:
                raise RagError(
                    f"another process is writing to the index {directory}",
                    "wait for that ingest or removal to finish, then run this again",
                ) from None
        self.manifest = Manifest(directory / MANIFEST_FILE)

    @classmethod
    def open(cls, directory: Path, config: RagConfig, writable: bool = False) -> "Index":
        if not writable and not (directory / MANIFEST_FILE).is_file():
            raise RagError(f"no index at {directory}", f"create one with `rag ingest PATH --index {directory}`")
        return cls(directory, config, writable)

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "embedder" in self.__dict__ and hasattr(self.embedder, "close"):
            self.embedder.close()  # type: ignore[attr-defined]
        self.manifest.close()
        if self._lock is not None:
            self._lock.release()

    # --- components, built on first use ----------------------------------------------------
    @cached_property
    def embedder(self) -> "object":
        from rag.index.embedders import build_embedder

        return build_embedder(self.config.embedding, self.directory / EMBEDDING_CACHE_FILE)

    @cached_property
    def query_embedder(self) -> "object":
        """The model the index was built with (from the recorded config), uncached: queries are one-offs."""
        from rag.index.embedders import build_embedder

        return build_embedder(self.indexed_embedding_config(), None)

    def indexed_embedding_config(self) -> "object":
        from rag.config import EmbeddingConfig

        recorded = self._recorded_section("embedding", EmbeddingConfig)
        if recorded is None:
            return self.config.embedding
        recorded = self._model_that_built_the_vectors(recorded)
        return recorded.model_copy(update={"api_key": self.config.embedding.api_key})  # secrets are recorded masked

    def _model_that_built_the_vectors(self, recorded: "object") -> "object":
        """The recorded config, made to name the local model whose id the index recorded (configs written before
        `precision` or `int8_recipe` existed leave them out: the current default would be the wrong model)."""
        from rag.index.embedders.minilm_int8 import RECIPES

        built_with = self.manifest.get_meta("embedding_model")
        variants = [{"precision": "fp32"}] + [{"precision": "int8", "int8_recipe": recipe} for recipe in RECIPES]
        for update in variants:
            candidate = recorded.model_copy(update=update)  # type: ignore[attr-defined]
            if candidate.model_id() == built_with != recorded.model_id():  # type: ignore[attr-defined]
                return candidate
        return recorded

    @cached_property
    def vectors(self) -> "object":
        return self._open_vectors(fresh=False)

    def _open_vectors(self, fresh: bool) -> "object":
        from rag.index.vector_store import open_chroma

        name = self.config.vector_store.collection or f"rag-{self.manifest.get_meta('index_id')}"
        return open_chroma(self.directory, self.config.vector_store.url, name, fresh=fresh)

    def use_vectors(self, store: "object") -> None:
        """Use this vector store handle (the server shares one, kept fresh across processes' writes)."""
        self.__dict__["vectors"] = store

    def open_fresh_vectors(self) -> "object":
        """A new vector store handle that sees every write committed so far, whichever process made it."""
        return self._open_vectors(fresh=True)

    # --- embedding model changes -----------------------------------------------------------
    def ensure_embedding_model(self) -> bool:
        """Drop all vectors when the embedding model changed (dimensions may differ); True if it did."""
        current = self.config.embedding.model_id()
        recorded = self.manifest.get_meta("embedding_model")
        if recorded == current:
            return False
        had_chunks = self.manifest.chunk_count() > 0
        self.vectors.drop()  # type: ignore[attr-defined]
        with self.manifest.db:
            self.manifest.db.execute("DELETE FROM chunks")
            self.manifest.db.execute("DELETE FROM pending")
            self.manifest.db.execute("UPDATE sources SET fingerprint = '', chunks = 0")
            self.manifest.bump_generation()
        self.manifest.set_meta("embedding_model", current)
        return had_chunks

    # --- crash repair ----------------------------------------------------------------------
    def needs_repair(self) -> bool:
        return bool(self.manifest.pending()) or self.manifest.get_meta("dirty") == "1"

    def repair(self) -> RepairReport:
        """Make the vector store hold exactly the manifest's chunks, then rebuild BM25 if stale."""
        report = RepairReport()
        expected = self.manifest.all_chunk_ids()
        present = self.vectors.ids()  # type: ignore[attr-defined]
        orphans = present - expected
        if orphans:
            self.vectors.delete(orphans)  # type: ignore[attr-defined]
            report.orphans_deleted = len(orphans)
        missing = sorted(expected - present)
        if missing:
            chunks = self.manifest.chunks_by_id(missing)
            vectors = self.embedder.embed([c.text for c in chunks])  # type: ignore[attr-defined]
            self.vectors.upsert([c.chunk_id for c in chunks], vectors, [chunk_metadata(c, self._file_type(c.source)) for c in chunks])  # type: ignore[attr-defined]
            report.vectors_restored = len(chunks)
        self.manifest.clear_pending()
        report.bm25_rebuilt = self.refresh_bm25()
        self.manifest.set_meta("dirty", "0")
        return report

    def _file_type(self, source: str) -> str:
        record = self.manifest.source(source)
        return record.file_type if record else ""

    # --- BM25 ------------------------------------------------------------------------------
    def _bm25_generation(self, chunk_ids: list[str]) -> str:
        digest = hashlib.blake2b(digest_size=12)
        digest.update(self.config.bm25.model_dump_json().encode())
        for chunk_id in chunk_ids:
            digest.update(chunk_id.encode())
        return digest.hexdigest()

    def refresh_bm25(self) -> bool:
        """Rebuild BM25 if the chunk set or BM25 settings changed since it was built; True if rebuilt."""
        chunk_ids, texts = self.manifest.chunk_texts()
        generation = self._bm25_generation(chunk_ids)
        folder = self.directory / "bm25"
        if self.manifest.get_meta("bm25_generation") == generation and (folder / generation).is_dir():
            return False
        index = BM25Index(self.config.bm25)
        index.build(chunk_ids, texts)
        index.save(folder / generation)
        self.manifest.set_meta("bm25_generation", generation)
        for old in folder.iterdir():
            if old.name != generation:
                shutil.rmtree(old, ignore_errors=True)
        return True

    def bm25(self) -> BM25Index:
        generation = self.manifest.get_meta("bm25_generation")
        folder = self.directory / "bm25" / str(generation)
        if generation is None or not folder.is_dir():
            raise RagError(f"the BM25 index in {self.directory} is missing", "run `rag ingest` again to rebuild it")
        return BM25Index.load(folder, self._recorded_section("bm25", BM25Config) or self.config.bm25)

    def _recorded_section(self, name: str, model: type) -> "object | None":
        import json

        recorded = self.manifest.get_meta("config")
        return model.model_validate(json.loads(recorded)[name]) if recorded else None


def chunk_metadata(chunk: "object", file_type: str) -> dict[str, str | int]:
    """What the vector store keeps beside each vector: enough to filter by source, type and page."""
    meta: dict[str, str | int] = {
        "source": chunk.source,  # type: ignore[attr-defined]
        "doc_id": chunk.doc_id,  # type: ignore[attr-defined]
        "file_type": file_type,
        "start": chunk.start,  # type: ignore[attr-defined]
        "end": chunk.end,  # type: ignore[attr-defined]
    }
    if chunk.page is not None:  # type: ignore[attr-defined]
        meta["page"] = chunk.page  # type: ignore[attr-defined]
    return meta
