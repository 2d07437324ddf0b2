"""Incremental ingestion: scan, skip what is unchanged, load, chunk, embed what is new, write.

Files are processed in batches of about `ingest.write_batch_chunks` chunks so memory stays flat and
an interrupted run keeps every batch it finished (and every embedding, via the cache).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import LoadError
from rag.index.manifest import SourceRecord
from rag.index.store import Index, chunk_metadata
from rag.ingest.chunking import Chunker, token_counts
from rag.ingest.detect import UnsupportedType, detect_type
from rag.ingest.loaders import load_file
from rag.ingest.report import FileProblem, IngestReport
from rag.ingest.scan import FoundFile, scan
from rag.types import Chunk, LoadedSource

EMBED_STEP = 256  # texts per embedding call: the cache commits and the progress bar moves this often


class Progress:
    """Receives progress events; the CLI draws bars, library callers can ignore it."""

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, name: str, amount: int = 1, total: int | None = None) -> None: ...


@dataclass(slots=True)
class _Prepared:
    found: FoundFile
    loaded: LoadedSource
    chunks: list[Chunk]
    content_hash: str
    size: int
    mtime: float
    is_new: bool


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

    # --- public --------------------------------------------------------------------------
    def ingest(self, paths: list[str]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        self._prepare_index(report)
        found = scan(paths, self.config.ingest)
        report.failed.extend(FileProblem(p, "no such file or folder") for p in found.missing)
        to_process = self._plan(found.files, report)
        self._process(to_process, report)
        seen = {f.path.as_posix() for f in found.files}
        for folder in found.folders:
            prefix = folder.as_posix().rstrip("/") + "/"
            for record in self.index.manifest.sources():
                if record.path.startswith(prefix) and record.path not in seen:
                    report.chunks_removed += self._remove_source(record.path)
                    report.removed += 1
        self._finish(report, started)
        return report

    def remove(self, paths: list[str]) -> IngestReport:
        """Remove indexed sources by file path, or every source under a folder path."""
        started = time.perf_counter()
        report = IngestReport()
        self._prepare_index(report)
        records = self.index.manifest.sources()
        for given in paths:
            exact = [r.path for r in records if r.path == given]  # sources not from files, e.g. "langchain:..."
            target = Path(given).resolve().as_posix()
            matches = exact or [r.path for r in records if r.path == target or r.path.startswith(target.rstrip("/") + "/")]
            if not matches:
                report.failed.append(FileProblem(given, "not in the index (see `rag sources`)"))
            for path in matches:
                report.chunks_removed += self._remove_source(path)
                report.removed += 1
        self._finish(report, started)
        return report

    # --- steps ---------------------------------------------------------------------------
    def _prepare_index(self, report: IngestReport) -> None:
        if self.index.needs_repair():
            repair = self.index.repair()
            report.repaired = {
                "orphan_vectors_deleted": repair.orphans_deleted,
                "vectors_restored": repair.vectors_restored,
                "bm25_rebuilt": repair.bm25_rebuilt,
            }
        if self.index.ensure_embedding_model():
            report.notes.append(FileProblem(str(self.index.directory), "embedding model changed: every source is re-embedded"))
        self.index.manifest.set_meta("dirty", "1")
        self.index.manifest.set_meta("config", self.config.model_dump_json())
        self._embedded_before = self._embedded_so_far()

    def _embedded_so_far(self) -> int:
        """Texts the index's embedder has embedded since it was opened (0 if it was never built)."""
        return getattr(self.index.embedder, "embedded_count", 0) if "embedder" in self.index.__dict__ else 0

    def _finish(self, report: IngestReport, started: float) -> None:
        self.index.manifest.fill_token_counts(token_counts)  # chunks of an index made before counts were stored
        self.index.refresh_bm25()
        self.index.manifest.set_meta("dirty", "0")
        report.texts_embedded = self._embedded_so_far() - self._embedded_before
        report.seconds = time.perf_counter() - started

    def _fingerprint(self, file_type: str) -> str:
        return self.config.indexing_fingerprint(file_type)

    def _plan(self, files: list[FoundFile], report: IngestReport) -> list[tuple[FoundFile, str, int, float, bool]]:
        """Return the files that need (re)indexing with their hash, size, mtime and whether they are new."""
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
                self._unchanged(record, report)
                continue
            content_hash = _hash_file(found.path)
            if record and fresh_config and record.content_hash == content_hash:
                self._unchanged(record, report)
                continue
            plan.append((found, content_hash, stat.st_size, stat.st_mtime, record is None))
        return plan

    def _unchanged(self, record: SourceRecord, report: IngestReport) -> None:
        """Nothing to re-embed; only new tags (if given) are recorded."""
        report.unchanged += 1
        if self.tags is not None and record.tag_list != self.tags:
            self.index.manifest.set_tags(record.path, self.tags)

    def _process(self, plan: list[tuple[FoundFile, str, int, float, bool]], report: IngestReport) -> None:
        batch: list[_Prepared] = []
        batch_chunks = 0
        self.progress.phase("Reading files", len(plan))
        self.progress.phase("Embedding chunks", 0)
        for found, content_hash, size, mtime, is_new in plan:
            prepared = self._prepare(found, content_hash, size, mtime, is_new, report)
            self.progress.advance("Reading files")
            if prepared is None:
                continue
            batch.append(prepared)
            batch_chunks += len(prepared.chunks)
            if batch_chunks >= self.config.ingest.write_batch_chunks:
                self._write_batch(batch, report)
                batch, batch_chunks = [], 0
        if batch:
            self._write_batch(batch, report)

    def _prepare(
        self, found: FoundFile, content_hash: str, size: int, mtime: float, is_new: bool, report: IngestReport
    ) -> _Prepared | None:
        try:
            file_type = detect_type(found.path)
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
        groups = tuple(self._source_groups(found, self.index.manifest.source(found.path.as_posix())))
        for document in loaded.documents:
            document.groups = document.groups or groups
        chunker = self._chunker(loaded.file_type)
        source = found.path.as_posix()
        chunks = [c for d in loaded.documents for c in chunker.chunk(d, source, loaded.file_type)]
        return _Prepared(found, loaded, chunks, content_hash, size, mtime, is_new)

    def _source_groups(self, found: FoundFile, record: SourceRecord | None) -> list[str]:
        """The reader groups of a file: --groups, else the ingest.groups globs it matches, else what it had."""
        if self.groups is not None:
            return self.groups
        from rag.retrieve.filters import path_matches

        mapped = {
            group
            for pattern, groups in self.config.ingest.groups.items()
            if path_matches(found.display, pattern) or path_matches(found.path.as_posix(), pattern)
            for group in groups
        }
        if mapped:
            return sorted(mapped)
        return record.group_list if record is not None else []

    def _chunker(self, file_type: str) -> Chunker:
        fingerprint = self._fingerprint(file_type)
        if fingerprint not in self._chunkers:
            self._chunkers[fingerprint] = Chunker(self.config.chunking, fingerprint)
        return self._chunkers[fingerprint]

    def _write_batch(self, batch: list[_Prepared], report: IngestReport) -> None:
        manifest = self.index.manifest
        old_ids = {p.found.path.as_posix(): manifest.chunk_ids_of(p.found.path.as_posix()) for p in batch}
        to_embed = [c for p in batch for c in p.chunks if c.chunk_id not in old_ids[p.found.path.as_posix()]]
        vectors = self._embed([c.text for c in to_embed])
        vector_of = {c.chunk_id: vectors[i] for i, c in enumerate(to_embed)}
        store = self.index.vectors
        import numpy as np

        for prepared in batch:
            path = prepared.found.path.as_posix()
            added = [c for c in prepared.chunks if c.chunk_id in vector_of]
            removed = old_ids[path] - {c.chunk_id for c in prepared.chunks}
            manifest.begin_source_write(path, [c.chunk_id for c in added])
            if added:
                store.upsert(  # type: ignore[attr-defined]
                    [c.chunk_id for c in added],
                    np.vstack([vector_of[c.chunk_id] for c in added]),
                    [chunk_metadata(c, prepared.loaded.file_type) for c in added],
                )
            if removed:
                store.delete(removed)  # type: ignore[attr-defined]
            manifest.commit_source(self._record(prepared), prepared.loaded.documents, prepared.chunks)
            report.chunks_added += len(added)
            report.chunks_removed += len(removed)
            if prepared.is_new:
                report.new += 1
            else:
                report.changed += 1

    def _embed(self, texts: list[str]) -> "object":
        import numpy as np

        self.progress.advance("Embedding chunks", 0, total=len(texts))
        parts = []
        for begin in range(0, len(texts), EMBED_STEP):
            part = texts[begin : begin + EMBED_STEP]
            parts.append(self.index.embedder.embed(part))  # type: ignore[attr-defined]
            self.progress.advance("Embedding chunks", len(part))
        return np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def _record(self, prepared: _Prepared) -> SourceRecord:
        loaded = prepared.loaded
        previous = self.index.manifest.source(prepared.found.path.as_posix())
        tags = self.tags if self.tags is not None else (previous.tag_list if previous else [])
        groups = self._source_groups(prepared.found, previous)
        return SourceRecord(
            path=prepared.found.path.as_posix(),
            display_path=prepared.found.display,
            file_type=loaded.file_type,
            content_hash=prepared.content_hash,
            fingerprint=self._fingerprint(loaded.file_type),
            size=prepared.size,
            mtime=prepared.mtime,
            pages=loaded.page_count,
            documents=len(loaded.documents),
            chunks=len(prepared.chunks),
            ingested_at=time.time(),
            tags=json.dumps(tags),
            groups=json.dumps(groups),
        )

    def _remove_source(self, path: str) -> int:
        manifest = self.index.manifest
        ids = manifest.chunk_ids_of(path)
        manifest.begin_source_write(path, [])
        if ids:
            self.index.vectors.delete(ids)  # type: ignore[attr-defined]
        manifest.remove_source(path)
        return len(ids)


def _hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


ProgressFactory = Callable[[], Progress]
