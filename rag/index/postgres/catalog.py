"""`PostgresCatalog`: the folder manifest's semantics (`rag.index.contracts.Catalog`) in PostgreSQL tables.

A catalog holds one pooled connection while open (autocommit), so the vector store can write in its
transactions. A source write is one transaction: `begin_source_write` opens it (and journals the chunk ids, as
the folder manifest does), the pgvector store upserts and deletes in it, `commit_source` commits it and
`abort_source_write` rolls it back. A writer killed in between leaves nothing: the server rolls back a
transaction whose connection died, so there is nothing to repair. Every commit readers must notice increments
`generation` in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rag.index.contracts import SourceRecord
from rag.index.manifest import SOURCE_COLUMNS, source_row, stored_chunk, stored_document, structure_json
from rag.index.postgres import connections
from rag.types import Chunk, Document

if TYPE_CHECKING:
    import psycopg

_CHUNK_COLUMNS = "chunk_id, source, doc_id, ordinal, start_at, end_at, text, page, heading, tokens"
_BUMP = (
    "INSERT INTO rag_meta VALUES (%s, '1') "
    "ON CONFLICT (key) DO UPDATE SET value = (CAST(rag_meta.value AS BIGINT) + 1)::TEXT"
)


class PostgresCatalog:
    """The catalog of the index in one PostgreSQL database."""

    def __init__(self, url: str, location: str) -> None:
        self.url = url
        self.location = location
        self._conn: psycopg.Connection[Any] | None = connections.acquire(url)  # None once closed
        self._writing: str | None = None  # the source whose write transaction is open
        self._snapshot_meta: dict[str, str] | None = None  # rag_meta as the open read snapshot sees it
        if self.get_meta("index_id") is None:
            import uuid

            self.conn.execute(
                "INSERT INTO rag_meta VALUES ('index_id', %s) ON CONFLICT (key) DO NOTHING", (uuid.uuid4().hex,)
            )

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The connection the catalog holds from open to close."""
        if self._conn is None:
            raise RuntimeError(f"the catalog of {self.location} is closed")
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._conn.broken:
            connections.release(self.url, self._conn)  # nothing to roll back on a dropped connection
            self._conn = None
        if self._conn is not None:
            self._rollback_open_write()
            connections.release(self.url, self._conn)  # the pool rolls back whatever was left open
            self._conn = None

    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    # --- meta and generations ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        if self._snapshot_meta is not None:  # a snapshot sees one committed state: read once at its start
            return self._snapshot_meta.get(key)
        rows = self._rows("SELECT value FROM rag_meta WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO rag_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, value)
        )
        if self._snapshot_meta is not None:
            self._snapshot_meta[key] = value

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def begin_read(self) -> None:
        from rag.errors import Unavailable

        try:
            self._connect_again_if_lost()
            meta = self._begin_snapshot()
        except Unavailable:  # the connection died while idle (a server restart): once more, on a fresh one
            self._connect_again_if_lost()
            meta = self._begin_snapshot()
        self._snapshot_meta = meta
        connections.bind(self.url, self.conn)  # the vector store's reads share the snapshot

    def _begin_snapshot(self) -> dict[str, str]:
        """Open the snapshot and read every meta value (generation, config, groups epoch...) in one round trip:
        the searcher asks for them several times per request, and inside the snapshot they cannot change."""
        cursor = self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT key, value FROM rag_meta")
        cursor.nextset()  # past BEGIN's (empty) result
        return dict(cursor.fetchall())

    def end_read(self) -> None:
        self._snapshot_meta = None
        connections.unbind(self.url)
        if self._conn is not None and not self._conn.broken:  # a dropped connection has no transaction to end
            self.conn.execute("ROLLBACK")

    def _connect_again_if_lost(self) -> None:
        """Swap a dropped connection for a fresh one (Unavailable while the server is down), so a long-lived
        reader (each of `rag serve`'s pipelines) recovers by itself when the server is back."""
        if self._conn is not None and not self._conn.broken and not self._conn.closed:
            return
        if self._conn is not None:
            connections.release(self.url, self._conn)  # the pool discards a broken connection
            self._conn = None
        self._conn = connections.acquire(self.url)

    # --- reads -------------------------------------------------------------------------------------------
    def sources(self) -> list[SourceRecord]:
        return [SourceRecord(*row) for row in self._rows(f"SELECT {SOURCE_COLUMNS} FROM rag_sources ORDER BY display_path")]

    def source(self, path: str) -> SourceRecord | None:
        rows = self._rows(f"SELECT {SOURCE_COLUMNS} FROM rag_sources WHERE path = %s", (path,))
        return SourceRecord(*rows[0]) if rows else None

    def chunk_ids_of(self, path: str) -> set[str]:
        return {row[0] for row in self._rows("SELECT chunk_id FROM rag_chunks WHERE source = %s", (path,))}

    def all_chunk_ids(self) -> set[str]:
        return {row[0] for row in self._rows("SELECT chunk_id FROM rag_chunks")}

    def chunk_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM rag_chunks")[0][0])

    def chunk_texts(self) -> tuple[list[str], list[str]]:
        rows = self._rows("SELECT chunk_id, text FROM rag_chunks ORDER BY chunk_id COLLATE \"C\"")
        return [r[0] for r in rows], [r[1] for r in rows]

    def chunks_by_id(self, chunk_ids: list[str]) -> list[Chunk]:
        rows = self._rows(f"SELECT {_CHUNK_COLUMNS} FROM rag_chunks WHERE chunk_id = ANY(%s)", (list(chunk_ids),))
        found = {row[0]: stored_chunk(row) for row in rows}
        return [found[c] for c in chunk_ids if c in found]

    def chunks_at(self, positions: list[tuple[str, str, int]]) -> list[Chunk]:
        if not positions:
            return []
        sources, doc_ids, ordinals = (list(column) for column in zip(*set(positions)))
        rows = self._rows(
            f"SELECT {_CHUNK_COLUMNS} FROM rag_chunks "
            "JOIN unnest(%s::text[], %s::text[], %s::int[]) AS wanted (source, doc_id, ordinal) USING (source, doc_id, ordinal)",
            (sources, doc_ids, ordinals),
        )
        return [stored_chunk(row) for row in rows]

    def document(self, source: str, doc_id: str) -> Document | None:
        return self.documents([(source, doc_id)]).get((source, doc_id))

    def documents(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        if not keys:
            return {}
        sources, doc_ids = (list(column) for column in zip(*set(keys)))
        rows = self._rows(
            "SELECT source, doc_id, title, text, structure FROM rag_documents "
            "JOIN unnest(%s::text[], %s::text[]) AS wanted (source, doc_id) USING (source, doc_id)",
            (sources, doc_ids),
        )
        return {(row[0], row[1]): stored_document(*row[1:]) for row in rows}

    def chunk_groups(self) -> Iterator[tuple[str, str]]:
        return iter(
            self._rows(
                "SELECT c.chunk_id, d.groups FROM rag_chunks c JOIN rag_documents d ON d.source = c.source AND d.doc_id = c.doc_id"
            )
        )

    # --- writes ------------------------------------------------------------------------------------------
    def begin_source_write(self, path: str, added: list[str]) -> None:
        """Open the source's transaction; the vector store's writes join it."""
        self._rollback_open_write()
        self.conn.execute("BEGIN")
        self._writing = path
        connections.bind(self.url, self.conn)  # the vector store's writes join this transaction
        self.conn.execute(
            "INSERT INTO rag_pending VALUES (%s, %s) ON CONFLICT (source) DO UPDATE SET added = EXCLUDED.added",
            (path, json.dumps(added)),
        )

    def commit_source(self, record: SourceRecord, documents: list[Document], chunks: list[Chunk]) -> None:
        with self._transaction():
            before = dict(self._rows("SELECT doc_id, groups FROM rag_documents WHERE source = %s", (record.path,)))
            self.conn.execute("DELETE FROM rag_sources WHERE path = %s", (record.path,))
            self.conn.execute(
                f"INSERT INTO rag_sources ({SOURCE_COLUMNS}) VALUES ({', '.join(['%s'] * 13)})", source_row(record)
            )
            self._copy(
                "rag_documents (source, doc_id, title, text, structure, groups)",
                ((record.path, d.doc_id, d.title, d.text, structure_json(d), json.dumps(sorted(d.groups))) for d in documents),
            )
            self._copy(
                f"rag_chunks ({_CHUNK_COLUMNS})",
                (
                    (c.chunk_id, record.path, c.doc_id, c.ordinal, c.start, c.end, c.text, c.page, json.dumps(c.heading_path), c.tokens)
                    for c in chunks
                ),
            )
            self.conn.execute("DELETE FROM rag_pending WHERE source = %s", (record.path,))
            self.conn.execute(_BUMP, ("generation",))
            after = {d.doc_id: json.dumps(sorted(d.groups)) for d in documents}
            if any(doc_id in after and after[doc_id] != groups for doc_id, groups in before.items()):
                self.conn.execute(_BUMP, ("groups_epoch",))  # readers rebuild their per-group lexical statistics

    def _copy(self, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert rows with COPY, in the open transaction: one stream instead of a statement per row, and still
        all or nothing with the rest of the source's commit."""
        with self.conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def abort_source_write(self, path: str) -> None:
        self._rollback_open_write()

    def set_tags(self, path: str, tags: list[str]) -> None:
        with self._transaction():
            self.conn.execute("UPDATE rag_sources SET tags = %s WHERE path = %s", (json.dumps(sorted(set(tags))), path))
            self.conn.execute(_BUMP, ("generation",))

    def remove_source(self, path: str) -> None:
        with self._transaction():
            self.conn.execute("DELETE FROM rag_sources WHERE path = %s", (path,))
            self.conn.execute("DELETE FROM rag_pending WHERE source = %s", (path,))
            self.conn.execute(_BUMP, ("generation",))

    def fill_token_counts(self, count: Callable[[list[str]], list[int]], batch: int = 2048) -> int:
        """Chunks copied in without token counts get them (no generation bump: what readers see is unchanged)."""
        filled = 0
        while True:
            rows = self._rows("SELECT chunk_id, text FROM rag_chunks WHERE tokens IS NULL LIMIT %s", (batch,))
            if not rows:
                return filled
            with self._transaction(), self.conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE rag_chunks SET tokens = %s WHERE chunk_id = %s", list(zip(count([r[1] for r in rows]), [r[0] for r in rows]))
                )
            filled += len(rows)

    def reset_chunks(self) -> None:
        with self._transaction():
            self.conn.execute("DELETE FROM rag_chunks")
            self.conn.execute("DELETE FROM rag_pending")
            self.conn.execute("UPDATE rag_sources SET fingerprint = '', chunks = 0")
            self.conn.execute(_BUMP, ("generation",))

    def pending(self) -> dict[str, list[str]]:
        return {row[0]: json.loads(row[1]) for row in self._rows("SELECT source, added FROM rag_pending")}

    def clear_pending(self) -> None:
        self.conn.execute("DELETE FROM rag_pending")

    # --- transactions ------------------------------------------------------------------------------------
    def _transaction(self) -> "_Commit":
        """Join the open source write and commit it at the end, or run alone in a transaction of its own."""
        return _Commit(self)

    def _rollback_open_write(self) -> None:
        if self._writing is not None:
            self._end("ROLLBACK")

    def _end(self, statement: str) -> None:
        """Commit or roll back the open transaction and unbind the connection from this thread."""
        import psycopg

        self._writing = None
        connections.unbind(self.url)
        try:
            self.conn.execute(statement)
        except psycopg.Error as exc:
            if statement == "COMMIT":
                raise connections.unreachable(self.url, exc) from None


class _Commit:
    def __init__(self, catalog: PostgresCatalog) -> None:
        self.catalog = catalog

    def __enter__(self) -> None:
        if self.catalog._writing is None:
            self.catalog.conn.execute("BEGIN")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.catalog._end("COMMIT" if kind is None else "ROLLBACK")
