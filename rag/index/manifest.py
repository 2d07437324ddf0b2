"""The ingestion manifest (SQLite): the folder backend's `Catalog` of sources, documents, chunks and the write journal.

It is the index's source of truth. The vector store and BM25 are derived from it and repaired
to match it after an interrupted run (see `rag.index.writer.IndexWriter.repair`).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.index.contracts import SourceRecord
from rag.types import Chunk, Document, Page, Section

__all__ = ["Manifest", "SourceRecord", "now"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY,          -- absolute path: the identity of a source
    display_path TEXT NOT NULL,     -- the path as the user gave it at ingest
    file_type TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL,      -- config fingerprint the chunks were made with
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    pages INTEGER NOT NULL,
    documents INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at REAL NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]', -- JSON list given at ingest, for retrieval filters
    groups TEXT NOT NULL DEFAULT '[]' -- JSON list: the source-level reader groups given at ingest
);
CREATE TABLE IF NOT EXISTS documents (
    source TEXT NOT NULL REFERENCES sources(path) ON DELETE CASCADE,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    structure TEXT NOT NULL,        -- JSON: pages and sections
    groups TEXT NOT NULL DEFAULT '[]', -- JSON list: who may read it ([] = every reader)
    PRIMARY KEY (source, doc_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    source TEXT NOT NULL REFERENCES sources(path) ON DELETE CASCADE,
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL,          -- JSON list: the heading path
    text TEXT NOT NULL,
    tokens INTEGER                  -- embedding-model tokens of text (NULL: counted before this column existed)
);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(source);
CREATE TABLE IF NOT EXISTS pending (  -- write journal: vector-store changes not yet committed here
    source TEXT PRIMARY KEY,
    added TEXT NOT NULL               -- JSON list of chunk ids being written to the vector store
);
"""


class Manifest:
    """Thin typed access to the manifest database; every write is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        # One connection is used by one thread at a time, but not always the thread that opened it
        # (the server lends pipelines to worker threads), hence check_same_thread=False.
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        _add_missing_columns(self.db)
        if self.get_meta("index_id") is None:
            self.set_meta("index_id", uuid.uuid4().hex)

    def close(self) -> None:
        self.db.close()

    # --- meta -----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """A counter bumped by every committed change to what readers can see (chunks, documents, groups, tags)."""
        return int(self.get_meta("generation") or 0)

    def bump_generation(self) -> None:
        """Call inside the write transaction whose change readers must notice."""
        self.db.execute(
            "INSERT INTO meta VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        )

    def begin_read(self) -> None:
        """Start a read snapshot: until `end_read`, every read sees one committed state (WAL), whatever writers commit."""
        self.db.execute("BEGIN")

    def end_read(self) -> None:
        self.db.rollback()

    def chunk_groups(self) -> Iterator[tuple[str, str]]:
        """(chunk id, JSON groups of its document) for every committed chunk."""
        return iter(
            self.db.execute("SELECT c.chunk_id, d.groups FROM chunks c JOIN documents d ON d.source = c.source AND d.doc_id = c.doc_id")
        )

    # --- sources --------------------------------------------------------------------------
    def sources(self) -> list[SourceRecord]:
        rows = self.db.execute(f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY display_path")
        return [SourceRecord(*row) for row in rows]

    def source(self, path: str) -> SourceRecord | None:
        row = self.db.execute(f"SELECT {SOURCE_COLUMNS} FROM sources WHERE path = ?", (path,)).fetchone()
        return SourceRecord(*row) if row else None

    def chunk_ids_of(self, path: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE source = ?", (path,))}

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks")}

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunk_texts(self) -> tuple[list[str], list[str]]:
        """All chunk ids and texts in a stable order (for building BM25)."""
        rows = self.db.execute("SELECT chunk_id, text FROM chunks ORDER BY chunk_id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def chunks_by_id(self, chunk_ids: list[str]) -> list[Chunk]:
        found: dict[str, Chunk] = {}
        for begin in range(0, len(chunk_ids), 500):
            part = chunk_ids[begin : begin + 500]
            rows = self.db.execute(
                "SELECT chunk_id, source, doc_id, ordinal, start, end, text, page, heading, tokens FROM chunks "
                f"WHERE chunk_id IN ({','.join('?' * len(part))})",
                part,
            )
            for row in rows:
                found[row[0]] = stored_chunk(row)
        return [found[c] for c in chunk_ids if c in found]

    def chunks_at(self, positions: list[tuple[str, str, int]]) -> list[Chunk]:
        """The chunks at these (source, doc_id, ordinal) positions (for neighbour expansion): one indexed read per
        document, in-process, so no round trips to save."""
        by_document: dict[tuple[str, str], set[int]] = {}
        for source, doc_id, ordinal in positions:
            by_document.setdefault((source, doc_id), set()).add(ordinal)
        found: list[Chunk] = []
        for (source, doc_id), ordinals in by_document.items():
            rows = self.db.execute(
                "SELECT chunk_id, source, doc_id, ordinal, start, end, text, page, heading, tokens FROM chunks "
                f"WHERE source = ? AND doc_id = ? AND ordinal IN ({','.join('?' * len(ordinals))})",
                [source, doc_id, *sorted(ordinals)],
            )
            found += [stored_chunk(row) for row in rows]
        return found

    def document(self, source: str, doc_id: str) -> Document | None:
        row = self.db.execute(
            "SELECT title, text, structure FROM documents WHERE source = ? AND doc_id = ?", (source, doc_id)
        ).fetchone()
        return None if row is None else stored_document(doc_id, *row)

    def documents(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        found = {key: self.document(*key) for key in set(keys)}  # in-process SQLite: a read per key costs no round trip
        return {key: document for key, document in found.items() if document is not None}

    # --- the write protocol ---------------------------------------------------------------
    def begin_source_write(self, path: str, added: list[str]) -> None:
        """Journal the chunk ids about to be written to the vector store, before writing them."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?)", (path, json.dumps(added)))

    def commit_source(self, record: SourceRecord, documents: list[Document], chunks: list[Chunk]) -> None:
        """Replace everything known about one source and clear its journal entry, atomically."""
        with self.db:
            before = dict(self.db.execute("SELECT doc_id, groups FROM documents WHERE source = ?", (record.path,)).fetchall())
            self.db.execute("DELETE FROM sources WHERE path = ?", (record.path,))
            self.db.execute(f"INSERT INTO sources ({SOURCE_COLUMNS}) VALUES ({','.join('?' * 13)})", source_row(record))
            self.db.executemany(
                "INSERT INTO documents (source, doc_id, title, text, structure, groups) VALUES (?, ?, ?, ?, ?, ?)",
                [(record.path, d.doc_id, d.title, d.text, structure_json(d), json.dumps(sorted(d.groups))) for d in documents],
            )
            self.db.executemany(
                "INSERT INTO chunks (chunk_id, source, doc_id, ordinal, start, end, page, heading, text, tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (c.chunk_id, record.path, c.doc_id, c.ordinal, c.start, c.end, c.page, json.dumps(c.heading_path), c.text, c.tokens)
                    for c in chunks
                ],
            )
            self.db.execute("DELETE FROM pending WHERE source = ?", (record.path,))
            self.bump_generation()
            after = {d.doc_id: json.dumps(sorted(d.groups)) for d in documents}
            if any(doc_id in after and after[doc_id] != groups for doc_id, groups in before.items()):
                self.db.execute(  # readers rebuild their per-group lexical statistics
                    "INSERT INTO meta VALUES ('groups_epoch', '1') "
                    "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                )

    def set_tags(self, path: str, tags: list[str]) -> None:
        with self.db:
            self.db.execute("UPDATE sources SET tags = ? WHERE path = ?", (json.dumps(sorted(set(tags))), path))
            self.bump_generation()

    def remove_source(self, path: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM sources WHERE path = ?", (path,))
            self.db.execute("DELETE FROM pending WHERE source = ?", (path,))
            self.bump_generation()

    def fill_token_counts(self, count: Callable[[list[str]], list[int]], batch: int = 2048) -> int:
        """Store the token counts of chunks written before counts were kept (a writer's migration); returns how many."""
        filled = 0
        while True:
            rows = self.db.execute("SELECT chunk_id, text FROM chunks WHERE tokens IS NULL LIMIT ?", (batch,)).fetchall()
            if not rows:
                return filled
            with self.db:  # no generation bump: what readers see does not change
                self.db.executemany("UPDATE chunks SET tokens = ? WHERE chunk_id = ?", zip(count([r[1] for r in rows]), [r[0] for r in rows]))
            filled += len(rows)

    def abort_source_write(self, path: str) -> None:
        """Nothing to undo here: the journal entry stays, so the next writer's repair restores agreement."""

    def reset_chunks(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM chunks")
            self.db.execute("DELETE FROM pending")
            self.db.execute("UPDATE sources SET fingerprint = '', chunks = 0")
            self.bump_generation()

    def pending(self) -> dict[str, list[str]]:
        return {row[0]: json.loads(row[1]) for row in self.db.execute("SELECT source, added FROM pending")}

    def clear_pending(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM pending")


SOURCE_COLUMNS = (
    "path, display_path, file_type, content_hash, fingerprint, size, mtime, pages, documents, chunks, ingested_at, tags, groups"
)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Indexes made before reader groups existed get the columns (empty groups: readable by everyone, as before);
    those made before token counts were stored get a `tokens` column of NULLs (counted when read, as before,
    until `fill_token_counts` runs at the next write)."""
    for table in ("sources", "documents"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "groups" not in columns:
            with db:
                db.execute(f"ALTER TABLE {table} ADD COLUMN groups TEXT NOT NULL DEFAULT '[]'")
    if "tokens" not in {row[1] for row in db.execute("PRAGMA table_info(chunks)")}:
        with db:
            db.execute("ALTER TABLE chunks ADD COLUMN tokens INTEGER")
    # the chunks still to count, found without reading every chunk: a writer asks at every run (58 ms at 100,000)
    with db:
        db.execute("CREATE INDEX IF NOT EXISTS chunks_without_tokens ON chunks(chunk_id) WHERE tokens IS NULL")


def source_row(record: SourceRecord) -> tuple:
    return tuple(getattr(record, name.strip()) for name in SOURCE_COLUMNS.split(","))


def stored_chunk(row: Sequence[Any]) -> Chunk:
    """A chunk from a catalog row: chunk_id, source, doc_id, ordinal, start, end, text, page, heading (JSON), tokens."""
    return Chunk(*row[:8], heading_path=tuple(json.loads(row[8])), tokens=row[9])


def stored_document(doc_id: str, title: str, text: str, structure_json: str) -> Document:
    """A document as a catalog stores it (title, text, and its structure as `structure_json` wrote it)."""
    structure = json.loads(structure_json)
    return Document(
        doc_id=doc_id,
        text=text,
        title=title,
        pages=[Page(*p) for p in structure["pages"]],
        sections=[Section(s[0], s[1], tuple(s[2])) for s in structure["sections"]],
    )


def structure_json(document: Document) -> str:
    return json.dumps(
        {
            "pages": [[p.start, p.end, p.number] for p in document.pages],
            "sections": [[s.start, s.end, list(s.heading_path)] for s in document.sections],
        }
    )


def now() -> float:
    return time.time()
