"""A fixed number of `RagPipeline`s shared by the server's worker threads.

Each pipeline has its own catalog connection, query embedder and BM25 handle, and is used by one
request at a time, inside one read snapshot: a request sees one committed state of the index from
its first read to its last, whatever an ingest commits meanwhile. What writers committed before the
snapshot began is picked up by `Index.begin_read` (`Index.sync`), which also keeps the vector store
handle this process shares fresh.
"""

from __future__ import annotations

import os
import queue
import threading

from rag.config import RagConfig
from rag.errors import RagError
from rag.pipeline import RagPipeline


class PoolBusy(Exception):
    """Every pipeline stayed busy for the whole wait."""


class PipelinePool:
    def __init__(self, location: str | os.PathLike[str], config: RagConfig, size: int) -> None:
        self.location = location
        self.config = config
        self.size = size
        self._idle: queue.LifoQueue[RagPipeline] = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, timeout: float) -> RagPipeline:
        """A pipeline with a read snapshot begun; give it back with `release`. Raises PoolBusy or RagError."""
        pipeline = self._take(timeout)
        try:
            pipeline.index.begin_read()
        except BaseException:
            self._idle.put(pipeline)
            raise
        return pipeline

    def release(self, pipeline: RagPipeline) -> None:
        try:
            pipeline.index.end_read()
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
                return RagPipeline.open(self.location, self.config)
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

