"""The pipelines the chat UI answers with: one per index folder and settings, opened on the first question and
reused by every later one (and by every browser session of this server), instead of one per question.

A lease takes the pipeline with a read snapshot begun (`rag.serve.pool.PipelinePool`, the server's mechanism),
so each question first catches up, through `Index.sync`, with what an upload or `rag ingest` committed since
the last one. Streamlit-free, so it is unit-tested.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.config import RagConfig
from rag.errors import RagError
from rag.index.store import MANIFEST_FILE
from rag.pipeline import RagPipeline
from rag.serve.pool import PipelinePool, PoolBusy

KEEP = 3  # pipelines kept open (index and settings combinations); the least recently used one beyond is closed
WAIT_S = 600.0  # a question waits this long for another session's answer on the same pipeline


class SharedPipelines:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._pools: OrderedDict[tuple[str, str], PipelinePool] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, index_dir: Path, config: RagConfig) -> Iterator[RagPipeline]:
        """The pipeline for this index and config, caught up with committed changes, for one question."""
        pool = self._pool(index_dir, config)
        try:
            pipeline = pool.acquire(WAIT_S)
        except PoolBusy:
            raise RagError("another question on this index is still being answered", "ask again in a moment") from None
        try:
            yield pipeline
        finally:
            pool.release(pipeline)

    def _pool(self, index_dir: Path, config: RagConfig) -> PipelinePool:
        folder = index_dir.resolve()
        if not (folder / MANIFEST_FILE).is_file():
            raise RagError(f"no index at {index_dir}", "upload documents in the sidebar to create it")
        key = (str(folder), config.model_dump_json())
        with self._lock:
            pool = self._pools.pop(key, None) or PipelinePool(folder, config, size=1)
            self._pools[key] = pool  # most recently used last
            while len(self._pools) > self.keep:
                _, oldest = self._pools.popitem(last=False)
                oldest.close()  # idle pipelines now, a leased one when it is given back
        return pool

    def close(self) -> None:
        with self._lock:
            while self._pools:
                self._pools.popitem()[1].close()


SHARED = SharedPipelines()  # one per Streamlit server process (modules are imported once, pages rerun)
