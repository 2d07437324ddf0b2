"""Index documents made elsewhere (LangChain or LlamaIndex loaders) as one logical source.

    from rag.ingest.external import ingest_documents

    docs = PyPDFLoader("handbook.pdf").load()          # or any LlamaIndex reader's documents
    with Index.open(Path("index"), config, writable=True) as index:
        report = ingest_documents(index, docs, "langchain:handbook")

The list is stored in the manifest like a file: under the key `source` (which must not start with
"/", so it never collides with a file's absolute path), `file_type` "external", and a content hash
over the documents' ids, titles, pages and texts. Ingesting the same list again is "unchanged" and
embeds nothing; a changed list replaces the source's chunks (chunks whose text and place did not
change keep their ids and vectors). Chunking is the file pipeline's; embedding, the journal, the vector
store, BM25 and crash repair are the `IndexWriter`'s, as for files.

Accepted items: LangChain `Document` (`page_content`, `metadata`, `id`), LlamaIndex `Document` /
`TextNode` / any `BaseNode` (`get_content()`, `metadata`, `id_`), and `rag.types.Document`.
Neither framework is imported here: items are recognised by their attributes.

Each item becomes one `rag.types.Document`:
- `doc_id`: metadata `id`, else metadata `doc_id`, else the item's own id when one was given
  (LangChain `Document.id`; a LlamaIndex `id_` passed explicitly, not the random default), else
  metadata `source` (or `file_path`) plus `#page=N` when it has a page, else a hash of the text.
  Repeated ids within one list get `#2`, `#3`, ... appended.
- `title`: metadata `title`, if any.
- pages: metadata `page` (0-based, as LangChain's PDF loaders write it) gives the whole text page
  `page + 1`; failing that a numeric `page_label` (1-based, as LlamaIndex's PDF reader writes it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from rag.core.progress import Progress
from rag.index.contracts import SourceRecord
from rag.index.store import Index
from rag.index.writer import EMBEDDING_PHASE, SourceWrite
from rag.ingest.chunking import Chunker
from rag.ingest.report import FileProblem, IngestReport
from rag.ingest.session import source_groups, write_session
from rag.types import Document, Page

FILE_TYPE = "external"

__all__ = ["FILE_TYPE", "ExternalIngestor", "convert_documents", "ingest_documents", "remove_documents", "source_key"]


def ingest_documents(
    index: Index,
    documents: Iterable[Any],
    source: str,
    *,
    tags: list[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Index `documents` as the one source `source` (e.g. "langchain:my-loader"), replacing what it held."""
    return ExternalIngestor(index, progress, tags).ingest_documents(documents, source)


def remove_documents(index: Index, source: str) -> IngestReport:
    """Remove a source made by `ingest_documents` with all its chunks."""
    return ExternalIngestor(index).remove_source(source)


def source_key(source: str) -> str:
    """The manifest key (and display path) of an external source name; rejects names that could be file paths."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError("source must be a non-empty name, e.g. 'langchain:my-loader'")
    if source.startswith("/"):
        raise ValueError(f"source {source!r} starts with '/': that is how files are keyed; use a name like 'langchain:docs'")
    return PurePosixPath(source).as_posix()


class ExternalIngestor:
    """Documents made elsewhere, written as one source through the index's `IndexWriter` (as files are)."""

    def __init__(self, index: Index, progress: Progress | None = None, tags: list[str] | None = None) -> None:
        self.index = index
        self.progress = progress or Progress()
        self.tags = sorted(set(tags)) if tags is not None else None

    def ingest_documents(self, documents: Iterable[Any], source: str) -> IngestReport:
        key = source_key(source)
        docs, notes = convert_documents(documents)  # bad input fails here, before the index is touched
        content_hash = _content_hash(docs)
        config = self.index.config
        fingerprint = config.indexing_fingerprint(FILE_TYPE)
        report = IngestReport()
        with write_session(self.index, self.progress, report) as writer:
            record = self.index.manifest.source(key)
            if record and record.fingerprint == fingerprint and record.content_hash == content_hash:
                report.unchanged += 1
                if self.tags is not None and record.tag_list != self.tags:
                    writer.set_tags(key, self.tags)
            else:
                report.notes.extend(FileProblem(key, note) for note in notes)
                chunker = Chunker(config.chunking, fingerprint)
                chunks = chunker.chunk_all(docs, key, FILE_TYPE)
                tags = self.tags if self.tags is not None else (record.tag_list if record else [])
                written = SourceRecord(
                    path=key,
                    display_path=key,
                    file_type=FILE_TYPE,
                    content_hash=content_hash,
                    fingerprint=fingerprint,
                    size=sum(len(doc.text.encode("utf-8", "surrogatepass")) for doc in docs),
                    mtime=time.time(),
                    pages=sum(len(doc.pages) for doc in docs),
                    documents=len(docs),
                    chunks=len(chunks),
                    ingested_at=time.time(),
                    tags=json.dumps(tags),
                    groups=json.dumps(source_groups(None, config.ingest, (key, key), record)),
                )
                self.progress.phase(EMBEDDING_PHASE, 0)
                report.count(writer.stage(SourceWrite(written, docs, chunks)))
                report.count(writer.flush())
        return report

    def remove_source(self, source: str) -> IngestReport:
        key = source_key(source)
        report = IngestReport()
        with write_session(self.index, self.progress, report) as writer:
            if self.index.manifest.source(key) is None:
                report.failed.append(FileProblem(source, "not in the index (see `rag sources`)"))
            else:
                report.chunks_removed += writer.remove(key)
                report.removed += 1
        return report


def convert_documents(documents: Iterable[Any]) -> tuple[list[Document], list[str]]:
    """Turn LangChain / LlamaIndex documents into `rag.types.Document`s with unique ids; notes on skipped items."""
    converted: list[Document] = []
    notes: list[str] = []
    used: set[str] = set()
    for position, item in enumerate(documents):
        text, metadata, own_id = _parts(item, position)
        if isinstance(item, Document):
            doc_id, title, pages = item.doc_id, item.title, list(item.pages)
        else:
            page = _page_number(metadata)
            doc_id = _doc_id(text, metadata, own_id, page)
            title = str(metadata.get("title") or "")
            pages = [Page(0, len(text), page)] if page is not None and text else []
        if not text.strip():
            notes.append(f"document {position} ({doc_id}) has no text: skipped")
            continue
        unique, n = doc_id, 1
        while unique in used:
            n += 1
            unique = f"{doc_id}#{n}"
        used.add(unique)
        sections = list(item.sections) if isinstance(item, Document) else []
        converted.append(Document(doc_id=unique, text=text, title=title, sections=sections, pages=pages))
    return converted, notes


def _parts(item: Any, position: int) -> tuple[str, dict[str, Any], str | None]:
    """(text, metadata, the item's own id if it was given explicitly)."""
    if isinstance(item, Document):
        return item.text, {}, item.doc_id
    if hasattr(item, "page_content"):  # LangChain Document
        own = getattr(item, "id", None)
        return _text(item.page_content, position), dict(getattr(item, "metadata", None) or {}), own
    if callable(getattr(item, "get_content", None)) and hasattr(item, "metadata"):  # LlamaIndex node / Document
        fields_set = getattr(item, "model_fields_set", set())
        own = getattr(item, "id_", None) if "id_" in fields_set else None  # not the random uuid default
        return _text(item.get_content(), position), dict(item.metadata or {}), own
    raise TypeError(
        f"item {position} is a {type(item).__module__}.{type(item).__name__}: expected a LangChain Document, "
        "a LlamaIndex Document or node, or rag.types.Document"
    )


def _text(value: Any, position: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"item {position}: text must be a string, not {type(value).__name__}")
    return value


def _page_number(metadata: dict[str, Any]) -> int | None:
    """1-based page number from metadata `page` (0-based) or a numeric `page_label` (1-based)."""
    page = metadata.get("page")
    if isinstance(page, str) and page.strip().isdigit():
        page = int(page)
    if isinstance(page, int) and not isinstance(page, bool) and page >= 0:
        return page + 1
    label = metadata.get("page_label")
    if isinstance(label, int) and not isinstance(label, bool) and label >= 1:
        return label
    if isinstance(label, str) and label.strip().isdigit() and int(label) >= 1:
        return int(label)
    return None


def _doc_id(text: str, metadata: dict[str, Any], own_id: str | None, page: int | None) -> str:
    for value in (metadata.get("id"), metadata.get("doc_id"), own_id):
        if value is not None and str(value).strip():
            return str(value)
    origin = metadata.get("source") or metadata.get("file_path")
    if origin is not None and str(origin).strip():
        return f"{origin}#page={page}" if page is not None else str(origin)
    return "text:" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _content_hash(documents: list[Document]) -> str:
    """Hash of everything stored for the documents: ids, titles, pages, sections and texts, in order."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(b"external-v1")
    for doc in documents:
        for part in (
            doc.doc_id,
            doc.title,
            repr([(p.start, p.end, p.number) for p in doc.pages]),
            repr([(s.start, s.end, s.heading_path) for s in doc.sections]),
            doc.text,
        ):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()
