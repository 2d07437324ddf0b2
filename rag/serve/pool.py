"""A fixed number of `RagPipeline`s shared by the server's worker threads.

Each pipeline has its own manifest connection, query embedder and BM25 handle, and is used by one
request at a time, inside one SQLite read snapshot: a request sees one committed state of the
index from its first read to its last, whatever an ingest commits meanwhile.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from rag.config import RagConfig
from rag.errors import RagError
from rag.pipeline import RagPipeline


class PoolBusy(Exception):
    """Every pipeline stayed busy for the whole wait."""


class PipelinePool:
    def __init__(self, index_dir: Path, config: RagConfig, size: int) -> None:
        self.index_dir = index_dir
        self.config = config
        self.size = size
        self._idle: queue.LifoQueue[RagPipeline] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._closed = False
        self.vectors = SharedVectors()

    def acquire(self, timeout: float) -> RagPipeline:
        """A pipeline with a read snapshot begun; give it back with `release`. Raises PoolBusy or RagError."""
        pipeline = self._take(timeout)
        try:
            pipeline.index.manifest.begin_read()
            pipeline.index.use_vectors(self.vectors.for_reader(pipeline.index))
        except BaseException:
            self._idle.put(pipeline)
            raise
        return pipeline

    def release(self, pipeline: RagPipeline) -> None:
        try:
            pipeline.index.manifest.end_read()
        finally:
            if self._closed:
                pipeline.index.close()
            else:
                self._idle.put(pipeline)

    def _take(self, timeout: float) -> RagPipeline:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = self._created < self.size
            if grow:
                self._created += 1
        if grow:
            try:
                return RagPipeline.open(self.index_dir, self.config)
            except BaseException:
                with self._lock:
                    self._created -= 1
                raise
        try:
            return self._idle.get(timeout=timeout)
        except queue.Empty:
            raise PoolBusy() from None

    def warm_up(self) -> None:
        """Open one pipeline now (loads the models), so the first request is not the slow one."""
        try:
            self.release(self.acquire(timeout=1))
        except RagError:
            pass  # e.g. an empty index: requests will say so

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().index.close()
            except queue.Empty:
                return


class SharedVectors:
    """One vector store handle for every pipeline and the in-process writer, reopened after other processes write.

    Embedded Chroma keeps its state in memory per process: writes made here are seen at once by every
    handle of this process, but a `rag ingest` run from another process is not. When the manifest
    generation moved on and this process was not writing, the handle is reopened (a few ms) so dense
    search sees the new vectors; requests in flight finish on the handle they started with.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: object | None = None
        self._generation: int | None = None
        self._writing_here = False

    def for_reader(self, index: "object") -> object:
        """The handle for a request whose read snapshot has `index.manifest.generation()`."""
        generation = index.manifest.generation()  # type: ignore[attr-defined]
        with self._lock:
            if self._store is None:
                self._store = index.vectors  # type: ignore[attr-defined]
            elif generation != self._generation and not self._writing_here:
                self._store = index.open_fresh_vectors()  # type: ignore[attr-defined]
            self._generation = generation
            return self._store

    def begin_write(self, index: "object") -> object:
        """The handle an in-process writer (holding the index's write lock) must use."""
        generation = index.manifest.generation()  # type: ignore[attr-defined]
        with self._lock:
            if self._store is None or generation != self._generation:
                self._store = index.open_fresh_vectors()  # type: ignore[attr-defined]
            self._writing_here = True
            return self._store

    def end_write(self, index: "object") -> None:
        with self._lock:
            self._generation = index.manifest.generation()  # type: ignore[attr-defined]
            self._writing_here = False
