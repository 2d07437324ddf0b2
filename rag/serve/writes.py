"""The server's writes to the index (ingest, removal, repair at start) and the sources listing, run on worker threads."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import RagConfig
from rag.errors import RagError, Unavailable
from rag.index.backends import open_backend
from rag.serve.errors import ApiError, rag_message
from rag.serve.schemas import IngestIn

if TYPE_CHECKING:
    from rag.ingest.pipeline import Ingestor
    from rag.ingest.report import IngestReport

log = logging.getLogger("rag.serve")


def write(
    lock: threading.Lock,
    index_dir: str | os.PathLike[str],
    config: RagConfig,
    action: Callable[[Ingestor], IngestReport],
    groups: list[str] | None,
    tags: list[str] | None,
) -> dict[str, Any]:
    """An ingest or removal through the file ingestor (its `IndexWriter` keeps this process's readers fresh)."""
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    if not lock.acquire(blocking=False):
        raise ApiError(409, "an ingest or removal is already running on this server; retry when it has finished", "conflict")
    try:
        try:
            opened = Index.open(index_dir, config, writable=True)
        except Unavailable:
            raise  # the index's storage is down: 503, not a conflict
        except RagError as exc:
            raise ApiError(409, rag_message(exc), "conflict") from None
        with opened:
            report = action(Ingestor(opened, tags=tags, groups=groups))
        log.info("write: %s", json.dumps({k: v for k, v in report.to_json().items() if not isinstance(v, list)}))
        return report.to_json()
    finally:
        lock.release()


def check_ingest_roots(paths: list[str], roots: list[str]) -> None:
    """Refuse (403) a server path outside `serve.ingest_roots`, so that an admin key cannot index any file the server
    can read (`/etc/passwd`, another index, `../..`). Paths are compared after resolving symlinks and `..`."""
    allowed = [Path(root).resolve() for root in roots]
    for path in paths:
        try:
            resolved = Path(path).resolve()
        except ValueError:  # a NUL or lone surrogate: no file can have that name; the ingest reports it as failed
            continue
        if not any(resolved.is_relative_to(root) for root in allowed):
            where = ", ".join(str(root) for root in allowed) or "none: server paths are off"
            raise ApiError(
                403,
                f"{path!r} is outside the folders this server ingests from ({where}); add its folder to serve.ingest_roots "
                "in the server's config, or send the documents in the request",
                "permission_error",
            )


def ingest_paths(index_dir: str | os.PathLike[str], config: RagConfig, body: IngestIn) -> list[str]:
    """Server-side paths as given, plus the request's documents written to the index's uploads folder as <name>.jsonl."""
    paths = list(body.paths)
    if body.documents:
        fields = config.ingest.jsonl
        uploads = open_backend(index_dir).uploads_dir()
        uploads.mkdir(parents=True, exist_ok=True)
        target = uploads / f"{body.name or 'upload-' + time.strftime('%Y%m%d-%H%M%S') + '-' + uuid.uuid4().hex[:6]}.jsonl"
        records = []
        for document in body.documents:
            record: dict[str, Any] = {fields.id_field: document.id, fields.title_field: document.title, fields.text_field: document.text}
            if document.groups is not None:
                if not fields.groups_field:
                    raise ApiError(422, "per-document groups need ingest.jsonl.groups_field to be set")
                record[fields.groups_field] = document.groups
            records.append(json.dumps(record))
        partial = target.with_suffix(".part")
        partial.write_text("\n".join(records) + "\n", encoding="utf-8")
        partial.replace(target)
        paths.append(str(target))
    return paths


def list_sources(index_dir: str | os.PathLike[str], config: RagConfig) -> list[dict[str, Any]]:
    from rag.index.store import Index

    with Index.open(index_dir, config) as opened:
        return [
            {
                "path": r.path,
                "display_path": r.display_path,
                "type": r.file_type,
                "documents": r.documents,
                "chunks": r.chunks,
                "groups": r.group_list,
                "tags": r.tag_list,
                "ingested_at": r.ingested_at,
            }
            for r in opened.manifest.sources()
        ]


def repair_if_interrupted(index_dir: str | os.PathLike[str], config: RagConfig) -> None:
    """After a crash mid-write, bring the vector store back in line with the manifest (if no one else is writing)."""
    from rag.index.store import Index
    from rag.index.writer import IndexWriter

    try:
        with Index.open(index_dir, config) as opened:
            if not opened.needs_repair():
                return
        with Index.open(index_dir, config, writable=True) as opened:
            report = IndexWriter(opened).repair()
        log.warning("repaired an interrupted write: %s", asdict(report))
    except RagError as exc:
        log.warning("index not repaired at start: %s", exc.message)
