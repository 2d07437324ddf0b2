"""One ingest or removal as the front ends run it: an `IndexWriter` whose work is recorded in an `IngestReport`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rag.config import IngestConfig
from rag.core.paths import path_matches
from rag.core.progress import Progress
from rag.index.contracts import SourceRecord
from rag.index.store import Index
from rag.index.writer import IndexWriter
from rag.ingest.report import FileProblem, IngestReport


@contextmanager
def write_session(index: Index, progress: Progress, report: IngestReport) -> Iterator[IndexWriter]:
    """The writer of one run; on success `report` gets what start-up repaired, texts embedded and seconds.

    An exception leaves the index marked dirty: the next run repairs it (see `IndexWriter`).
    """
    started = time.perf_counter()
    with IndexWriter(index, progress) as writer:
        if writer.started.repaired is not None:
            repair = writer.started.repaired
            report.repaired = {
                "orphan_vectors_deleted": repair.orphans_deleted,
                "vectors_restored": repair.vectors_restored,
                "bm25_rebuilt": repair.bm25_rebuilt,
            }
        if writer.started.model_changed:
            report.notes.append(FileProblem(index.location, "embedding model changed: every source is re-embedded"))
        yield writer
    report.texts_embedded = writer.texts_embedded
    report.seconds = time.perf_counter() - started


def source_groups(explicit: list[str] | None, config: IngestConfig, paths: tuple[str, ...], record: SourceRecord | None) -> list[str]:
    """The reader groups of a source: the run's --groups, else the `ingest.groups` globs one of its `paths` (as
    given, absolute) matches, else what it had (new sources: none, i.e. every reader)."""
    if explicit is not None:
        return explicit
    mapped = {group for pattern, groups in config.groups.items() if any(path_matches(p, pattern) for p in paths) for group in groups}
    if mapped:
        return sorted(mapped)
    return record.group_list if record is not None else []
