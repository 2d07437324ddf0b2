"""Copy an index to another location, of the same or another backend, without embedding anything again.

Every source is read from the source index (its record, documents with their reader groups, chunks and stored
vectors) and committed to the target through the one writer, with the source index's recorded config, so the
target's embedding model and BM25 settings are the source's. API keys are copied too, as their stored hashes
(revoked ones stay revoked; a key whose id or active name the target already has is left out).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace

from rag.config import RagConfig
from rag.core.progress import Progress
from rag.errors import RagError
from rag.index.backends import open_backend
from rag.index.store import Index
from rag.index.writer import EMBEDDING_PHASE, IndexWriter, SourceWrite

COPY_PHASE = "Copying sources"


@dataclass(frozen=True, slots=True)
class CopyReport:
    source: str
    target: str
    sources: int
    chunks: int
    texts_embedded: int
    keys: int  # API keys added to the target


def copy_index(source: str | os.PathLike[str], target: str | os.PathLike[str], progress: Progress | None = None) -> CopyReport:
    """Copy every source of the index at `source` into the index at `target` (created if needed)."""
    progress = progress or Progress()
    with Index.open(source, RagConfig()) as reader:
        recorded = reader.manifest.get_meta("config")
        if recorded is None:
            raise RagError(f"the index at {reader.location} has never been written", "ingest something into it first")
        config = RagConfig.model_validate(json.loads(recorded))
        with Index.open(target, config, writable=True) as index:
            if index.location == reader.location:
                raise RagError("the source and the target are the same index", "give another target location")
            with IndexWriter(index, progress) as writer:
                records = reader.manifest.sources()
                progress.phase(COPY_PHASE, len(records))
                progress.phase(EMBEDDING_PHASE, 0)  # stays empty: every vector comes from the source index
                chunks = 0
                groups = dict(reader.manifest.chunk_groups())
                for record in records:
                    write = _read_source(reader, record.path, groups)
                    writer.stage(replace(write, record=record))
                    chunks += len(write.chunks)
                    progress.advance(COPY_PHASE, 1)
                writer.flush()
                embedded = writer.texts_embedded
            keys = open_backend(target).key_store().import_hashed(open_backend(source).key_store().export_hashed())
            return CopyReport(reader.location, index.location, len(records), chunks, embedded, keys)


def _read_source(reader: Index, path: str, groups: dict[str, str]) -> SourceWrite:
    """One source as the writer takes it: documents (with their groups), chunks, and their stored vectors."""
    record = reader.manifest.source(path)
    assert record is not None
    chunk_ids = sorted(reader.manifest.chunk_ids_of(path))
    chunks = reader.manifest.chunks_by_id(chunk_ids)
    documents = []
    for doc_id in dict.fromkeys(c.doc_id for c in sorted(chunks, key=lambda c: (c.doc_id, c.ordinal))):
        document = reader.manifest.document(path, doc_id)
        if document is not None:
            first = next(c.chunk_id for c in chunks if c.doc_id == doc_id)
            documents.append(replace(document, groups=tuple(json.loads(groups.get(first, "[]")))))
    ids, matrix = reader.vectors.get_vectors(chunk_ids)
    return SourceWrite(record, documents, chunks, vectors={chunk_id: matrix[i] for i, chunk_id in enumerate(ids)})
