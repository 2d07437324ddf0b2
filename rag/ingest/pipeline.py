"""Incremental ingestion of files: scan, skip what is unchanged, load, chunk, and hand the rest to the writer.

The `IndexWriter` (rag.index.writer) embeds and commits: sources are staged as they are read and committed in
batches of about `ingest.write_batch_chunks` chunks, so memory stays flat and an interrupted run keeps every
batch it finished (and every embedding, via the cache).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from rag.core.progress import Progress, ProgressFactory
from rag.errors import LoadError
from rag.index.contracts import SourceRecord
from rag.index.store import Index
from rag.index.writer import EMBEDDING_PHASE, IndexWriter, SourceWrite
from rag.ingest.chunking import Chunker
from rag.ingest.detect import UnsupportedType, detect_type
from rag.ingest.loaders import load_file
from rag.ingest.removal import plan_removal, reject_blank_paths
from rag.ingest.report import FileProblem, IngestReport
from rag.ingest.scan import FoundFile, scan
from rag.ingest.session import source_groups, write_session

__all__ = ["Ingestor", "Progress", "ProgressFactory"]


@dataclass(frozen=True, slots=True)
class _Planned:
    """A file that needs (re)indexing."""

    found: FoundFile
    content_hash: str
    size: int
    mtime: float


class Ingestor:
    def __init__(
        self, index: Index, progress: Progress | None = None, tags: list[str] | None = None, groups: list[str] | None = None
    ) -> None:
        """`tags` label every ingested source (for retrieval filters); None keeps each source's existing tags.

        `groups`: who may read the ingested documents through the server ([] = everyone). None: the
        `ingest.groups` glob mapping decides, else each source keeps the groups it had (new ones: everyone).
        A JSON Lines record's own groups field (ingest.jsonl.groups_field) wins for that record.
        """
        self.index = index
        self.tags = sorted(set(tags)) if tags is not None else None
        self.groups = sorted(set(groups)) if groups is not None else None
        self.config = index.config
        self.progress = progress or Progress()
        self._chunkers: dict[str, Chunker] = {}
        self._extensions = {ending: file_type for file_type, spec in self.config.ingest.loaders.items() for ending in spec.extensions}

    # --- public --------------------------------------------------------------------------
    def ingest(self, paths: list[str]) -> IngestReport:
        reject_blank_paths(paths, "a blank path would mean the current folder: name it, e.g. `.`; nothing was ingested")
        report = IngestReport()
        with write_session(self.index, self.progress, report) as writer:
            found = scan(paths, self.config.ingest)
            report.failed.extend(FileProblem(p, "no such file or folder") for p in found.missing)
            plan = self._plan(found.files, report, writer)
            self._process(plan, report, writer)
            seen = {f.path.as_posix() for f in found.files}
            for folder in found.folders:
                prefix = folder.as_posix().rstrip("/") + "/"
                for record in self.index.manifest.sources():
                    if record.path.startswith(prefix) and record.path not in seen:
                        report.chunks_removed += writer.remove(record.path)
                        report.removed += 1
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

    def _plan(self, files: list[FoundFile], report: IngestReport, writer: IndexWriter) -> list[_Planned]:
        """The files that need (re)indexing, with their hash, size and mtime."""
        limit = int(self.config.ingest.max_file_mb * 1024 * 1024)
        manifest = self.index.manifest
        plan = []
        self.progress.phase("Checking files", len(files))
        for found in files:
            self.progress.advance("Checking files")
            stat = found.path.stat()
            if stat.st_size > limit:
                report.failed.append(
                    FileProblem(
                        found.display,
                        f"file is {stat.st_size:,} bytes, over ingest.max_file_mb={self.config.ingest.max_file_mb:g}"
                        " (raise it with --set ingest.max_file_mb=N)",
                    )
                )
                continue
            record = manifest.source(found.path.as_posix())
            fresh_config = (
                record is not None
                and record.fingerprint == self._fingerprint(record.file_type)
                and record.group_list == self._source_groups(found, record)  # new groups: rewritten, not re-embedded
            )
            if record and fresh_config and record.size == stat.st_size and record.mtime == stat.st_mtime:
                self._unchanged(record, report, writer)
                continue
            content_hash = _hash_file(found.path)
            if record and fresh_config and record.content_hash == content_hash:
                self._unchanged(record, report, writer)
                continue
            plan.append(_Planned(found, content_hash, stat.st_size, stat.st_mtime))
        return plan

    def _unchanged(self, record: SourceRecord, report: IngestReport, writer: IndexWriter) -> None:
        """Nothing to re-embed; only new tags (if given) are recorded."""
        report.unchanged += 1
        if self.tags is not None and record.tag_list != self.tags:
            writer.set_tags(record.path, self.tags)

    def _process(self, plan: list[_Planned], report: IngestReport, writer: IndexWriter) -> None:
        """Read and chunk each file, staging it with the writer, which commits full batches as it goes."""
        self.progress.phase("Reading files", len(plan))
        self.progress.phase(EMBEDDING_PHASE, 0)
        for planned in plan:
            write = self._prepare(planned, report)
            self.progress.advance("Reading files")
            if write is not None:
                report.count(writer.stage(write))
        report.count(writer.flush())

    def _prepare(self, planned: _Planned, report: IngestReport) -> SourceWrite | None:
        found = planned.found
        try:
            file_type = detect_type(found.path, self._extensions)
            loaded = load_file(found.path, file_type, self.config.ingest, doc_id=found.display)
        except UnsupportedType as exc:
            report.skipped.append(FileProblem(found.display, str(exc)))
            return None
        except LoadError as exc:
            report.failed.append(FileProblem(found.display, str(exc)))
            return None
        except Exception as exc:  # a parser bug on one file must not stop the other files
            report.failed.append(FileProblem(found.display, f"unexpected error reading the file: {type(exc).__name__}: {exc}"))
            return None
        report.notes.extend(FileProblem(found.display, note) for note in loaded.notes)
        source = found.path.as_posix()
        previous = self.index.manifest.source(source)
        groups = self._source_groups(found, previous)
        for document in loaded.documents:
            document.groups = document.groups or tuple(groups)
        chunker = self._chunker(loaded.file_type)
        chunks = [c for d in loaded.documents for c in chunker.chunk(d, source, loaded.file_type)]
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

    def _source_groups(self, found: FoundFile, record: SourceRecord | None) -> list[str]:
        """The reader groups of a file: --groups, else the ingest.groups globs it matches, else what it had."""
        return source_groups(self.groups, self.config.ingest, (found.display, found.path.as_posix()), record)

    def _chunker(self, file_type: str) -> Chunker:
        fingerprint = self._fingerprint(file_type)
        if fingerprint not in self._chunkers:
            self._chunkers[fingerprint] = Chunker(self.config.chunking, fingerprint)
        return self._chunkers[fingerprint]


def _hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
