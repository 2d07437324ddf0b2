"""`IndexWriter`: the one owner of writes to an index (journal -> vector write -> commit -> BM25 refresh, and repair).

Front ends (the file ingestor, the LangChain/LlamaIndex document ingestor, the HTTP ingest) decide *what* to
write and hand it over as `SourceWrite`s; the writer decides *how*:

    with IndexWriter(index, progress) as writer:       # start(): repair, embedding-model check, dirty flag
        committed = writer.stage(SourceWrite(record, documents, chunks))   # commits when a batch is full
        committed += writer.flush()                     # commit what is staged now (e.g. after every file)
        writer.remove("/abs/path/old.pdf")
    # on leaving without an error, finish(): flush, BM25 refresh, dirty flag off
    # on leaving by Ctrl-C, keep_on_interrupt(): flush, repair (BM25 refresh), dirty flag off

Per source, a commit is: journal the chunk ids about to be written (`Catalog.begin_source_write`), upsert the
new vectors and delete the old ones, then `Catalog.commit_source`, which makes the source's documents and chunks
visible and clears its journal entry in one transaction. A crash in between leaves a journal entry (and the
dirty flag): the next writer's `start()` repairs, so the catalog, the vectors and BM25 always end up agreeing.
Readers only rank chunks the catalog committed, so they never see a half-written source.

A backend whose catalog and vectors share one database can make each source's commit one transaction: its
`begin_source_write` opens it, its vector store writes inside it, `commit_source` commits and
`abort_source_write` rolls back; nothing is then left to repair. Every `stage`d source is committed on its own,
so a run stopped part-way keeps every source committed before the stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from rag.core.progress import Progress
from rag.core.tokens import token_counts
from rag.index.contracts import SourceRecord, VectorStore
from rag.types import Chunk, Document

if TYPE_CHECKING:
    from rag.index.store import Index  # the index imports the writer (repair on open) at run time

EMBEDDING_PHASE = "Embedding chunks"  # the progress phase the writer reports embedding under
EMBED_STEP = 256  # texts per embedding call: the cache commits and the progress bar moves this often

__all__ = ["EMBEDDING_PHASE", "Committed", "IndexWriter", "RepairReport", "SourceWrite", "WriteStart", "chunk_metadata"]


@dataclass(slots=True)
class SourceWrite:
    """Everything one source contributes to the index, ready to commit.

    `record.path` is the source's key. `vectors` may carry vectors computed elsewhere (e.g. on other machines)
    by chunk id; chunks without one are embedded by the writer (through the index's embedding cache).
    """

    record: SourceRecord
    documents: list[Document]
    chunks: list[Chunk]
    vectors: Mapping[str, np.ndarray] | None = None


@dataclass(frozen=True, slots=True)
class Committed:
    """One source the writer committed: whether it is new to the index, and how many chunks came and went."""

    path: str
    new: bool
    added: int
    removed: int


@dataclass(slots=True)
class RepairReport:
    """What `repair()` had to fix after an interrupted write."""

    orphans_deleted: int = 0
    vectors_restored: int = 0
    bm25_rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.orphans_deleted or self.vectors_restored)


@dataclass(slots=True)
class WriteStart:
    """What `start()` had to do before writing."""

    repaired: RepairReport | None = None  # set when an interrupted write was repaired
    model_changed: bool = False  # the embedding model changed: every chunk was dropped and will be re-embedded


class IndexWriter:
    """Writes to one index opened with `writable=True` (which holds its write lock)."""

    def __init__(self, index: Index, progress: Progress | None = None, batch_chunks: int | None = None) -> None:
        """`batch_chunks`: stage this many chunks before committing (default `ingest.write_batch_chunks`); larger
        batches embed more texts per call, smaller ones commit sooner."""
        self.index = index
        self.catalog = index.manifest
        self.progress = progress or Progress()
        self.batch_chunks = batch_chunks or index.config.ingest.write_batch_chunks
        self._store: VectorStore | None = None  # opened on first use (`open_store`)
        self._active = False  # between start() (or repair()) and close()
        self._staged: list[SourceWrite] = []
        self._staged_chunks = 0
        self._embedded_at_start = 0
        self.started = WriteStart()  # what `start()` did

    # --- the write session -------------------------------------------------------------------
    def __enter__(self) -> "IndexWriter":
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self.finish()
            elif issubclass(kind, KeyboardInterrupt):
                self.keep_on_interrupt()
        finally:
            self.close()

    def start(self) -> WriteStart:
        """Repair an interrupted write, drop the vectors if the embedding model changed, mark the index dirty.

        The vector store is opened here only when repair or a model change needs it; otherwise on the first
        write that needs it (`open_store`): a run that finds nothing changed never loads the store's client
        (about half a second of imports for embedded Chroma)."""
        started = self.started = WriteStart()
        self.index.check_writable()
        self._active = True
        if self.index.needs_repair():
            started.repaired = self._repair()
        started.model_changed = self._ensure_embedding_model()
        self.catalog.set_meta("dirty", "1")
        self.catalog.set_meta("config", self.index.config.model_dump_json())
        if self.catalog.chunk_count() == 0:  # an empty index: the store may build its search index once, at the end
            begin_load = getattr(self.open_store(), "begin_load", None)  # (PgVectorStore)
            if begin_load is not None:
                begin_load()
        self._embedded_at_start = self._embedded_so_far()
        return started

    def finish(self) -> None:
        """Commit what is staged, refresh BM25, and mark the index consistent."""
        self.flush()
        self._end_load()
        self.catalog.fill_token_counts(token_counts)  # chunks of an index made before counts were stored
        self.index.backend.lexical_store().refresh(self.catalog, self.index.config.bm25)
        self.catalog.set_meta("dirty", "0")

    def keep_on_interrupt(self) -> None:
        """Ctrl-C (or SIGTERM, which `rag ingest` turns into one): commit the sources already staged (whole files),
        then repair, which also refreshes BM25, so what was committed is searchable by both retrievers at once.
        A second interrupt here leaves the index marked dirty; the next writer or reader to open it repairs it."""
        self.flush()
        self._repair()

    def close(self) -> None:
        """Give the vector store handle back to this process's readers (after `finish`, or after an error)."""
        self._active = False
        if self._store is not None:
            self.index.end_write()
            self._store = None

    @property
    def texts_embedded(self) -> int:
        """Texts sent to the embedding model since `start()` (cache hits excluded)."""
        return self._embedded_so_far() - self._embedded_at_start

    # --- writes ----------------------------------------------------------------------------
    def open_store(self) -> VectorStore:
        """The vector store writes go through, opened on first use. A caller that knows it will write can call
        this early, e.g. while a worker process reads its first file, so the two load side by side."""
        if not self._active:
            raise RuntimeError("IndexWriter.start() (or `with IndexWriter(...)`) must come before writing")
        if self._store is None:
            self._store = self.index.begin_write()
        return self._store

    def stage(self, write: SourceWrite) -> list[Committed]:
        """Queue one source; once `batch_chunks` chunks are queued they are embedded together and committed."""
        self._staged.append(write)
        self._staged_chunks += len(write.chunks)
        return self.flush() if self._staged_chunks >= self.batch_chunks else []

    def flush(self) -> list[Committed]:
        """Embed what the staged sources need, then commit them one source at a time."""
        batch, self._staged, self._staged_chunks = self._staged, [], 0
        if not batch:
            return []
        store = self.open_store()
        old_ids = {write.record.path: self.catalog.chunk_ids_of(write.record.path) for write in batch}
        given = {chunk_id: vector for write in batch for chunk_id, vector in (write.vectors or {}).items()}
        to_embed = [c for w in batch for c in w.chunks if c.chunk_id not in old_ids[w.record.path] and c.chunk_id not in given]
        vectors = self._embed(to_embed)
        vector_of = {**given, **{c.chunk_id: vectors[i] for i, c in enumerate(to_embed)}}
        committed = []
        for write in batch:
            path = write.record.path
            added = [c for c in write.chunks if c.chunk_id not in old_ids[path]]
            removed = old_ids[path] - {c.chunk_id for c in write.chunks}
            new = self.catalog.source(path) is None
            self.catalog.begin_source_write(path, [c.chunk_id for c in added])
            try:
                if added:
                    store.upsert(
                        [c.chunk_id for c in added],
                        np.vstack([vector_of[c.chunk_id] for c in added]),
                        [chunk_metadata(c, write.record.file_type) for c in added],
                    )
                if removed:
                    store.delete(removed)
                self.catalog.commit_source(write.record, write.documents, write.chunks)
            except BaseException:
                self.catalog.abort_source_write(path)
                raise
            committed.append(Committed(path, new, len(added), len(removed)))
        return committed

    def remove(self, path: str) -> int:
        """Remove one source (by its key) with all its chunks; returns how many chunks went."""
        ids = self.catalog.chunk_ids_of(path)
        store = self.open_store() if ids else None
        self.catalog.begin_source_write(path, [])
        try:
            if store is not None:
                store.delete(ids)
            self.catalog.remove_source(path)
        except BaseException:
            self.catalog.abort_source_write(path)
            raise
        return len(ids)

    def set_tags(self, path: str, tags: list[str]) -> None:
        """Replace the tags of an indexed source (nothing is re-embedded)."""
        self.catalog.set_tags(path, tags)

    # --- repair ----------------------------------------------------------------------------
    def repair(self) -> RepairReport:
        """Make the vector store hold exactly the catalog's chunks, then rebuild BM25 if stale."""
        if self._active:
            return self._repair()
        self.index.check_writable()
        self._active = True
        try:
            return self._repair()
        finally:
            self.close()

    def _repair(self) -> RepairReport:
        report = RepairReport()
        store = self.open_store()
        expected = self.catalog.all_chunk_ids()
        present = store.ids()
        orphans = present - expected
        if orphans:
            store.delete(orphans)
            report.orphans_deleted = len(orphans)
        missing = sorted(expected - present)
        if missing:
            chunks = self.catalog.chunks_by_id(missing)
            vectors = self.index.embedder.embed([c.text for c in chunks])
            types = {record.path: record.file_type for record in self.catalog.sources()}
            store.upsert([c.chunk_id for c in chunks], vectors, [chunk_metadata(c, types.get(c.source, "")) for c in chunks])
            report.vectors_restored = len(chunks)
        self.catalog.clear_pending()
        self._end_load()
        report.bm25_rebuilt = self.index.backend.lexical_store().refresh(self.catalog, self.index.config.bm25)
        self.catalog.set_meta("dirty", "0")
        return report

    # --- helpers ---------------------------------------------------------------------------

    def _end_load(self) -> None:
        """Let a store that deferred its search index during a load (`begin_load`) build it now."""
        end_load = getattr(self._store, "end_load", None)
        if end_load is not None:
            end_load()

    def _ensure_embedding_model(self) -> bool:
        """Drop all vectors when the embedding model changed (dimensions may differ); True if chunks were dropped."""
        current = self.index.config.embedding.model_id()
        if self.catalog.get_meta("embedding_model") == current:
            return False
        had_chunks = self.catalog.chunk_count() > 0
        self.open_store().drop()
        self.catalog.reset_chunks()
        self.catalog.set_meta("embedding_model", current)
        return had_chunks

    def _embed(self, chunks: list[Chunk]) -> np.ndarray:
        """Embed in steps of `EMBED_STEP`, over the chunks sorted by token count (counted by the chunker, in the
        model's tokens): each step then holds texts of near-equal length across the whole batch, not just within
        one step, so the model pads less, and runs of one count fill whole model batches that need no attention
        mask (minilm.py)."""
        self.progress.advance(EMBEDDING_PHASE, 0, total=len(chunks))
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        sizes = [len(c.text) if c.tokens is None else c.tokens for c in chunks]  # None: a chunk made without its count
        order = np.argsort(np.asarray(sizes, dtype=np.int64), kind="stable")
        parts = []
        for begin in range(0, len(chunks), EMBED_STEP):
            part = [chunks[i].text for i in order[begin : begin + EMBED_STEP]]
            parts.append(self.index.embedder.embed(part))
            self.progress.advance(EMBEDDING_PHASE, len(part))
        stacked = np.vstack(parts)
        vectors = np.empty_like(stacked)
        vectors[order] = stacked  # back to the callers' order
        return vectors

    def _embedded_so_far(self) -> int:
        """Texts the index's embedder has embedded since it was opened (0 if it was never built)."""
        return self.index.embedder.embedded_count if "embedder" in self.index.__dict__ else 0


def chunk_metadata(chunk: Chunk, file_type: str) -> dict[str, str | int | float | bool]:
    """What the vector store keeps beside each vector: enough to filter by source, type and page."""
    meta: dict[str, str | int | float | bool] = {
        "source": chunk.source,
        "doc_id": chunk.doc_id,
        "file_type": file_type,
        "start": chunk.start,
        "end": chunk.end,
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
    return meta

