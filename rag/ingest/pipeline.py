"""Incremental ingestion of files: scan, skip what is unchanged, load, chunk, and hand the rest to the writer.

Each file is read and chunked in a worker process under `ingest.limits` (rag.ingest.worker): a file that hangs,
balloons or is past a limit fails with a reason and the run goes on. The `IndexWriter` (rag.index.writer) embeds
and commits: files are committed as they finish, in small batches (at most `ingest.write_batch_chunks` chunks or
`COMMIT_EVERY_S` seconds of work), so an interrupted run keeps what it finished and the next run does the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.core.progress import Progress, ProgressFactory
from rag.errors import LoadError
from rag.index.bm25 import MAX_KNOWN_TEXTS, forget_tokens, remember_tokens
from rag.index.contracts import SourceRecord
from rag.index.store import Index
from rag.index.writer import EMBEDDING_PHASE, IndexWriter, SourceWrite
from rag.ingest.detect import UnsupportedType, detect_type
from rag.ingest.loaders import loader_factory
from rag.ingest.removal import plan_removal, reject_blank_paths
from rag.ingest.report import FileProblem, IngestReport
from rag.ingest.scan import FoundFile, scan
from rag.ingest.session import source_groups, write_session
from rag.ingest.worker import FileReader, ReaderChild, ReadTask, os_reason

__all__ = ["COMMIT_EVERY_S", "Ingestor", "Progress", "ProgressFactory"]

COMMIT_EVERY_S = 2.0  # finished files wait at most this long to be committed (what a SIGKILL can lose)


@dataclass(frozen=True, slots=True)
class _Planned:
    """A file that needs (re)indexing."""

    found: FoundFile
    content_hash: str
    size: int
    mtime: float


class Ingestor:
    reads_here = True  # files are read by this process's reader (RayIngestor's workers read instead)

    def __init__(
        self, index: Index, progress: Progress | None = None, tags: list[str] | None = None, groups: list[str] | None = None,
        tokenise_in_reader: bool = True, reader_child: ReaderChild | None = None,
    ) -> None:
        """`tags` label every ingested source (for retrieval filters); None keeps each source's existing tags.

        `groups`: who may read the ingested documents through the server ([] = everyone). None: the
        `ingest.groups` glob mapping decides, else each source keeps the groups it had (new ones: everyone).
        A JSON Lines record's own groups field (ingest.jsonl.groups_field) wins for that record.

        `tokenise_in_reader`: the reader's child also tokenises the chunks for this process's BM25 refresh (off
        where another process refreshes BM25, as on Ray's workers).

        `reader_child`: a reader's child started before this ingest (`rag ingest` starts one before it loads its
        config), adopted by the next run's `FileReader`, which kills it if no file is read; a run that fails
        before reading kills it too. Without one, `ingest` starts its own as it begins (where files are read in
        a child), so library callers (`rag.add`, `rag serve`, the UI) get the same head start: the child's
        interpreter start and imports overlap the scan and plan instead of delaying the first file.
        """
        self.index = index
        self.tokenise_in_reader = tokenise_in_reader
        self._reader_child = reader_child
        self._chunks_read = 0  # by this ingestor: the reader's child tokenises up to MAX_KNOWN_TEXTS of them
        self.tags = sorted(set(tags)) if tags is not None else None
        self.groups = sorted(set(groups)) if groups is not None else None
        self.config = index.config
        self.progress = progress or Progress()
        self._extensions = {ending: file_type for file_type, spec in self.config.ingest.loaders.items() for ending in spec.extensions}

    # --- public --------------------------------------------------------------------------
    def ingest(self, paths: list[str]) -> IngestReport:
        reject_blank_paths(paths, "a blank path would mean the current folder: name it, e.g. `.`; nothing was ingested")
        report = IngestReport()
        if self._reader_child is None and self.reads_here and self.config.ingest.limits.isolate:
            self._reader_child = ReaderChild.spawn()  # boots and imports while this run scans and plans, as `rag ingest`'s
        try:
            with write_session(self.index, self.progress, report) as writer:
                found = scan(paths, self.config.ingest)
                report.failed.extend(FileProblem(p, "no such file or folder") for p in found.missing)
                report.skipped.extend(FileProblem(path, reason) for path, reason in found.skipped)
                indexed = {record.path: record for record in self.index.manifest.sources()}  # one read, not one per file
                plan = self._plan(found.files, indexed, report, writer)
                self._process(plan, report, writer)
                seen = {f.path.as_posix() for f in found.files}
                roots = tuple(folder.as_posix().rstrip("/") + "/" for folder in found.folders)
                for path in indexed:  # indexed before this run, under a folder given, and no longer there
                    if path.startswith(roots) and path not in seen:
                        report.chunks_removed += writer.remove(path)
                        report.removed += 1
        finally:
            forget_tokens()  # the refresh (at the session's end) has taken what it could; a failed run took nothing
            if self._reader_child is not None:  # the run failed before reading: nobody adopted it
                self._reader_child.kill()
                self._reader_child = None
        return report

    def remove(self, paths: list[str], *, folders: bool = True, everything: bool = False) -> IngestReport:
        """Remove indexed sources by exact path; with `folders`, every source under a folder path too.

        The rules are in rag.ingest.removal: a blank path, or folders that would empty the index without
        `everything`, raise UsageError and remove nothing; a path that names no source is reported as failed."""
        report = IngestReport()
        plan_removal(self.index.manifest.sources(), paths, folders=folders, everything=everything)  # refuse before writing
        with write_session(self.index, self.progress, report) as writer:
            plan = plan_removal(self.index.manifest.sources(), paths, folders=folders, everything=everything)
            report.failed.extend(plan.problems)
            for path in plan.sources:
                report.chunks_removed += writer.remove(path)
                report.removed += 1
        return report

    # --- steps ---------------------------------------------------------------------------
    def _fingerprint(self, file_type: str) -> str:
        return self.config.indexing_fingerprint(file_type)

    def _plan(self, files: list[FoundFile], indexed: dict[str, SourceRecord], report: IngestReport, writer: IndexWriter) -> list[_Planned]:
        """The files that need (re)indexing, with their hash, size and mtime (`indexed`: the sources by path)."""
        limit = int(self.config.ingest.max_file_mb * 1024 * 1024)
        plan = []
        self.progress.phase("Checking files", len(files))
        for found in files:
            self.progress.advance("Checking files")
            try:
                status = _stat_regular(found.path)
            except OSError as exc:
                report.failed.append(FileProblem(found.display, os_reason(exc)))
                continue
            if status.st_size > limit:
                report.failed.append(
                    FileProblem(
                        found.display,
                        f"file is {status.st_size:,} bytes, over ingest.max_file_mb={self.config.ingest.max_file_mb:g}"
                        " (raise it with --set ingest.max_file_mb=N)",
                    )
                )
                continue
            record = indexed.get(found.path.as_posix())
            fresh_config = (
                record is not None
                and record.fingerprint == self._fingerprint(record.file_type)
                and record.group_list == self._source_groups(found, record)  # new groups: rewritten, not re-embedded
            )
            if record and fresh_config and record.size == status.st_size and record.mtime == status.st_mtime:
                self._unchanged(record, report, writer)
                continue
            try:
                content_hash = _hash_file(found.path)
            except OSError as exc:
                report.failed.append(FileProblem(found.display, os_reason(exc)))
                continue
            if record and fresh_config and record.content_hash == content_hash:
                self._unchanged(record, report, writer)
                continue
            plan.append(_Planned(found, content_hash, status.st_size, status.st_mtime))
        return plan

    def _unchanged(self, record: SourceRecord, report: IngestReport, writer: IndexWriter) -> None:
        """Nothing to re-embed; only new tags (if given) are recorded."""
        report.unchanged += 1
        if self.tags is not None and record.tag_list != self.tags:
            writer.set_tags(record.path, self.tags)

    def _process(self, plan: list[_Planned], report: IngestReport, writer: IndexWriter) -> None:
        """Read and chunk each file in the worker, committing finished files every few seconds (or full batch)."""
        self.progress.phase("Reading files", len(plan))
        self.progress.phase(EMBEDDING_PHASE, 0)
        last_commit = time.monotonic()

        def commit() -> None:
            nonlocal last_commit
            report.count(writer.flush())
            last_commit = time.monotonic()

        child, self._reader_child = self._reader_child, None  # one run adopts it
        with FileReader(self.config.ingest, child) as reader:
            if plan:  # the reader's child reads the first file while this process opens the vector store
                reader.start()
                try:
                    reader.read_ahead(self._task(plan[0]))
                except (UnsupportedType, LoadError, OSError):
                    pass  # `_prepare` meets the same error and reports it
                writer.open_store()
            for planned in plan:
                write = self._prepare(planned, report, reader, commit)
                self.progress.advance("Reading files")
                if write is not None:
                    report.count(writer.stage(write))
                if time.monotonic() - last_commit >= COMMIT_EVERY_S:
                    commit()
        commit()

    def _prepare(self, planned: _Planned, report: IngestReport, reader: FileReader, commit: Callable[[], None]) -> SourceWrite | None:
        """Read one file into a `SourceWrite`; a slow file first lets `commit` keep the files read before it."""
        found = planned.found
        source = found.path.as_posix()
        try:
            result = reader.read(self._task(planned), while_slow=commit, slow_after_s=COMMIT_EVERY_S / 2)
            _check_unchanged(planned)
        except UnsupportedType as exc:
            report.skipped.append(FileProblem(found.display, str(exc)))
            return None
        except LoadError as exc:
            report.failed.append(FileProblem(found.display, str(exc)))
            return None
        except OSError as exc:
            report.failed.append(FileProblem(found.display, os_reason(exc)))
            return None
        loaded, chunks = result.loaded, result.chunks
        self._chunks_read += len(chunks)
        if result.tokens is not None:  # the refresh at the end of the run takes them instead of tokenising
            remember_tokens(self.config.bm25, [c.text for c in chunks], result.tokens)
        report.notes.extend(FileProblem(found.display, note) for note in loaded.notes)
        previous = self.index.manifest.source(source)
        groups = self._source_groups(found, previous)
        for document in loaded.documents:
            document.groups = document.groups or tuple(groups)
        record = SourceRecord(
            path=source,
            display_path=found.display,
            file_type=loaded.file_type,
            content_hash=planned.content_hash,
            fingerprint=self._fingerprint(loaded.file_type),
            size=planned.size,
            mtime=planned.mtime,
            pages=loaded.page_count,
            documents=len(loaded.documents),
            chunks=len(chunks),
            ingested_at=time.time(),
            tags=json.dumps(self.tags if self.tags is not None else (previous.tag_list if previous else [])),
            groups=json.dumps(groups),
        )
        return SourceWrite(record, loaded.documents, chunks)

    def _task(self, planned: _Planned) -> ReadTask:
        """What the reader needs to read one file (UnsupportedType or LoadError when its type has no loader)."""
        source = planned.found.path.as_posix()
        file_type = detect_type(planned.found.path, self._extensions)
        factory, section = loader_factory(file_type, self.config.ingest)
        return ReadTask(
            path=source,
            doc_id=planned.found.display,
            source=source,
            file_type=file_type,
            factory=factory,
            section=section,
            ingest=self.config.ingest,
            chunking=self.config.chunking,
            fingerprint=self._fingerprint(file_type),
            bm25=self.config.bm25 if self.tokenise_in_reader and self._chunks_read < MAX_KNOWN_TEXTS else None,  # past that: a rebuild, or a large segment
        )

    def _source_groups(self, found: FoundFile, record: SourceRecord | None) -> list[str]:
        """The reader groups of a file: --groups, else the ingest.groups globs it matches, else what it had."""
        return source_groups(self.groups, self.config.ingest, (found.display, found.path.as_posix()), record)

def _hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_regular(path: Path) -> os.stat_result:
    """The file's status; a FIFO, socket or device (given by name) is refused: reading one could block forever."""
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):
        raise IsADirectoryError(0, "not a regular file (a FIFO, socket or device): not read")
    return status


def _check_unchanged(planned: _Planned) -> None:
    """A file written to while it was read may give a torn text: it is left for the next run."""
    try:
        status = planned.found.path.stat()
    except FileNotFoundError:
        raise LoadError("the file was removed while it was read") from None
    if (status.st_size, status.st_mtime) != (planned.size, planned.mtime):
        raise LoadError("the file changed while it was read: run the ingest again once it is no longer being written")

