"""Ingestion spread over a Ray cluster (`rag ingest PATH --ray auto|ADDRESS`, docs/ray.md).

The driver (this process) keeps everything that decides *what* is written: it scans, skips unchanged files,
lists failures and commits through its `IndexWriter`, exactly as the plain `Ingestor` does. Only the per-file
work — load, chunk (the ingestor's own `_prepare` step) and embed — runs as Ray tasks on the cluster's workers,
which need nothing but a path they can read and the configuration: they never open the index. Each task returns
`SourceWrite`s carrying their vectors, which the driver's writer commits source by source, transactionally.

Ray is an optional extra (`pip install "rag[ray]"`) imported only here, only when `--ray` is given.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from rag.config import RagConfig
from rag.errors import RagError
from rag.index.contracts import Embedder, SourceRecord
from rag.index.store import Index
from rag.index.writer import EMBEDDING_PHASE, IndexWriter, SourceWrite
from rag.ingest.pipeline import Ingestor, Progress, _Planned
from rag.ingest.report import FileProblem, IngestReport
from rag.ingest.worker import FileReader

__all__ = ["RAY_PHASE", "RayIngestor", "connect"]

RAY_PHASE = "Reading on Ray"  # the driver's progress phase: files loaded, chunked and embedded by the workers
MAX_FILES_PER_TASK = 16  # small files travel together so one task embeds a useful batch
TASKS_PER_CPU = 4  # enough tasks in the queue that no worker idles while the driver commits
INSTALL_HINT = 'install the extra: pip install "rag[ray]" (every node of the cluster needs it, same version)'


def connect(address: str) -> bool:
    """Join the Ray cluster at `address` ("auto": the one this machine belongs to); True if this call connected.

    A process already connected (e.g. a test that called `ray.init`) keeps its connection.
    """
    try:
        import ray
    except ImportError:
        raise RagError("--ray needs Ray, which is not installed", INSTALL_HINT) from None
    if ray.is_initialized():
        return False
    where = "the local cluster (--ray auto)" if address == "auto" else f"the Ray cluster at {address}"
    fix = (
        "start the head with `ray start --head` (it prints the address, HOST:6379), join workers with "
        "`ray start --address=HOST:6379`, check `ray status` on that machine and that the port is open; "
        "--ray auto only works on a machine that is part of a running cluster"
    )
    unreachable = _unreachable(address)
    if unreachable:  # ray.init itself retries an unreachable address for a minute or more
        raise RagError(f"cannot reach {where}: {unreachable}", fix)
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=True, configure_logging=True)
    except Exception as exc:  # ConnectionError, RuntimeError or ValueError depending on how the address is wrong
        raise RagError(f"cannot reach {where}: {_first_line(exc)}", fix) from None
    return True


def _unreachable(address: str, timeout_s: float = 5.0) -> str | None:
    """Why a HOST:PORT address takes no TCP connection, or None (also for "auto", which Ray resolves itself)."""
    if address == "auto":
        return None
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return "the address must be auto or HOST:PORT (e.g. 10.0.0.5:6379, printed by `ray start --head`)"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"no connection to {host}:{port} ({exc.strerror or exc})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class RayIngestor(Ingestor):
    """The file ingestor with loading, chunking and embedding done by Ray tasks; scan, plan and commits stay here."""

    reads_here = False  # the workers read: no reader's child here

    def __init__(
        self,
        index: Index,
        address: str = "auto",
        progress: Progress | None = None,
        tags: list[str] | None = None,
        groups: list[str] | None = None,
    ) -> None:
        super().__init__(index, progress, tags=tags, groups=groups)
        self.address = address
        self._remote_embedded = 0

    def ingest(self, paths: list[str]) -> IngestReport:
        import ray

        connected = connect(self.address)
        try:
            report = super().ingest(paths)
        finally:
            if connected:
                ray.shutdown()
        report.texts_embedded += self._remote_embedded
        return report

    def _process(self, plan: list[_Planned], report: IngestReport, writer: IndexWriter) -> None:
        """Send the planned files to the workers in small batches and commit each result as it comes back."""
        import ray

        self.progress.phase(RAY_PHASE, len(plan))
        self.progress.phase(EMBEDDING_PHASE, 0)  # the writer's: stays empty, the workers send vectors
        if not plan:
            return
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        batches = _batches(plan, cpus)
        config = ray.put(self.config)
        task = ray.remote(num_cpus=1, max_retries=1)(prepare_on_worker)
        pending: dict[Any, list[_Planned]] = {}
        queue = list(reversed(batches))
        while queue or pending:
            while queue and len(pending) < cpus * 2:
                batch = queue.pop()
                work = [self._work_item(planned) for planned in batch]
                pending[task.remote(config, self.tags, self.groups, work)] = batch
            done, _ = ray.wait(list(pending), num_returns=1)
            batch = pending.pop(done[0])
            try:
                results: list[WorkerResult] = ray.get(done[0])
            except Exception as exc:  # the task itself died (worker lost, out of memory): its files failed, go on
                reason = f"the Ray task failed: {_first_line(exc)}"
                report.failed.extend(FileProblem(p.found.display, reason) for p in batch)
                self.progress.advance(RAY_PHASE, len(batch))
                continue
            for result in results:
                report.failed.extend(result.failed)
                report.skipped.extend(result.skipped)
                report.notes.extend(result.notes)
                self._remote_embedded += result.embedded
                if result.write is not None:
                    report.count(writer.stage(result.write))
                self.progress.advance(RAY_PHASE)
        report.count(writer.flush())

    def _work_item(self, planned: _Planned) -> WorkItem:
        """What a worker needs for one file besides the configuration: the file's previous record (its groups and
        tags carry over) and the chunk ids already in the index (their vectors are kept, not recomputed)."""
        path = planned.found.path.as_posix()
        return WorkItem(planned, self.index.manifest.source(path), frozenset(self.index.manifest.chunk_ids_of(path)))


@dataclass(frozen=True, slots=True)
class WorkItem:
    planned: _Planned
    previous: SourceRecord | None
    indexed_chunk_ids: frozenset[str]


@dataclass(slots=True)
class WorkerResult:
    write: SourceWrite | None
    failed: list[FileProblem] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)
    notes: list[FileProblem] = field(default_factory=list)
    embedded: int = 0


def _batches(plan: list[_Planned], cpus: int) -> list[list[_Planned]]:
    """Consecutive groups of files: a few tasks per CPU, at most MAX_FILES_PER_TASK files each."""
    size = max(1, min(MAX_FILES_PER_TASK, math.ceil(len(plan) / (cpus * TASKS_PER_CPU))))
    return [plan[begin : begin + size] for begin in range(0, len(plan), size)]


# --- on the workers ------------------------------------------------------------------------------

_embedders: dict[str, Embedder] = {}  # per worker process: the model loads once, not once per task


def prepare_on_worker(config: RagConfig, tags: list[str] | None, groups: list[str] | None, work: Sequence[WorkItem]) -> list[WorkerResult]:
    """Load and chunk each file with the ingestor's own step, then embed the chunks the index does not hold yet."""
    view = _WorkerIndex(config, {item.planned.found.path.as_posix(): item.previous for item in work})
    ingestor = Ingestor(cast(Index, view), tags=tags, groups=groups, tokenise_in_reader=False)  # the driver refreshes BM25
    results = []
    with FileReader(config.ingest) as reader:  # the same per-file limits as a plain ingest, on the worker
        for item in work:
            results.append(_prepare_one(config, ingestor, reader, item))
    return results


def _prepare_one(config: RagConfig, ingestor: Ingestor, reader: FileReader, item: WorkItem) -> WorkerResult:
    found = item.planned.found
    if not found.path.is_file():
        reason = f"not readable on Ray node {socket.gethostname()}: every node must see the files at the same path (docs/ray.md)"
        return WorkerResult(None, failed=[FileProblem(found.display, reason)])
    problems = IngestReport()
    write = ingestor._prepare(item.planned, problems, reader, lambda: None)  # commits happen on the driver
    result = WorkerResult(write, problems.failed, problems.skipped, problems.notes)
    if write is not None:
        new = [c for c in write.chunks if c.chunk_id not in item.indexed_chunk_ids]
        if new:
            vectors = _embedder(config).embed([c.text for c in new])
            write.vectors = {c.chunk_id: vectors[i] for i, c in enumerate(new)}
            result.embedded = len(new)
    return result


def _embedder(config: RagConfig) -> Embedder:
    """The configured embedder, one per worker process; a local model gets the task's one CPU, not every core."""
    from rag.index.embedders import build_embedder

    settings = config.embedding
    if settings.threads == 0:
        settings = settings.model_copy(update={"threads": 1})
    key = settings.model_dump_json()
    if key not in _embedders:
        _embedders[key] = build_embedder(settings)
    return _embedders[key]


class _WorkerIndex:
    """What `Ingestor._prepare` reads of an index, on a worker that cannot open it: the configuration and the
    previous record of each file it is given (computed by the driver)."""

    def __init__(self, config: RagConfig, previous: dict[str, SourceRecord | None]) -> None:
        self.config = config
        self.manifest = self
        self._previous = previous

    def source(self, path: str) -> SourceRecord | None:
        return self._previous.get(path)

