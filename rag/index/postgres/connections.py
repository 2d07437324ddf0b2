"""Connections to one PostgreSQL database: a bounded pool per database and process, the schema, clear errors.

libpq reads the password from the URL, `PGPASSWORD` or `~/.pgpass`; it is never put into a message: every
error names the database by its masked URL (`rag.index.backends.masked`).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rag.errors import RagError, Unavailable
from rag.index.backends import masked

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

SCHEMA_VERSION = "1"
POOL_MAX = 16  # connections per database and process: readers hold one each while open, other stores borrow one
POOL_WAIT_S = 30.0  # how long a caller waits for a free connection before a clear error
QUICK_WAIT_S = 0.5  # a caller waiting longer than this checks that the server answers at all (else: Unavailable)
CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout: an unreachable host fails within this
RECONNECT_S = 10.0  # the pool retries a failed new connection (backing off) this long, then the next caller tries anew

# One index per database. Every table is created idempotently; `schema_version` in rag_meta names the layout.
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS rag_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rag_sources (
    path TEXT PRIMARY KEY, display_path TEXT NOT NULL, file_type TEXT NOT NULL, content_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL, size BIGINT NOT NULL, mtime DOUBLE PRECISION NOT NULL, pages INTEGER NOT NULL,
    documents INTEGER NOT NULL, chunks INTEGER NOT NULL, ingested_at DOUBLE PRECISION NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]', groups TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS rag_documents (
    source TEXT NOT NULL REFERENCES rag_sources(path) ON DELETE CASCADE, doc_id TEXT NOT NULL, title TEXT NOT NULL,
    text TEXT NOT NULL, structure TEXT NOT NULL, groups TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (source, doc_id)
);
CREATE TABLE IF NOT EXISTS rag_chunks (
    chunk_id TEXT PRIMARY KEY, source TEXT NOT NULL REFERENCES rag_sources(path) ON DELETE CASCADE,
    doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL, start_at INTEGER NOT NULL, end_at INTEGER NOT NULL,
    page INTEGER, heading TEXT NOT NULL, text TEXT NOT NULL, tokens INTEGER
);
CREATE INDEX IF NOT EXISTS rag_chunks_by_source ON rag_chunks(source, doc_id, ordinal);
CREATE TABLE IF NOT EXISTS rag_pending (source TEXT PRIMARY KEY, added TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rag_vectors (chunk_id TEXT PRIMARY KEY, embedding vector NOT NULL, metadata JSONB NOT NULL);
CREATE INDEX IF NOT EXISTS rag_vectors_by_source ON rag_vectors ((metadata->>'source'));
CREATE TABLE IF NOT EXISTS rag_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, groups TEXT NOT NULL, admin BOOLEAN NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX IF NOT EXISTS rag_active_key_names ON rag_keys(name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS rag_embeddings (model TEXT, text_hash BYTEA, vector BYTEA NOT NULL, PRIMARY KEY (model, text_hash));
"""
SCHEMA_LOCK = 72_410_001  # advisory lock key serialising schema creation across processes


def unreachable(url: str, exc: BaseException) -> RagError:
    """A `rag.errors.Unavailable` for a failed connection, the password masked in the URL and the driver's text."""
    from rag.index.postgres.guarded import lost

    return lost(url, exc)


def connect(url: str, **kwargs: Any) -> "psycopg.Connection[Any]":
    """One connection outside the pool (the writer's lock, schema checks), autocommit; errors are RagErrors."""
    import psycopg

    from rag.index.postgres.guarded import GuardedCursor

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, cursor_factory=GuardedCursor, **kwargs)
    except psycopg.Error as exc:
        raise unreachable(url, exc) from None


def ensure_schema(url: str) -> None:
    """Create the index's tables if missing (idempotent, serialised across processes by an advisory lock).

    An index already at this version is left alone: `CREATE INDEX IF NOT EXISTS` would wait for every open
    write transaction."""
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('rag_meta') IS NOT NULL").fetchone()[0]:
            found = conn.execute("SELECT value FROM rag_meta WHERE key = 'schema_version'").fetchone()
            if found is not None and found[0] == SCHEMA_VERSION:
                return
    with connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO rag_meta VALUES ('schema_version', %s) ON CONFLICT (key) DO NOTHING", (SCHEMA_VERSION,)
        )
        version = conn.execute("SELECT value FROM rag_meta WHERE key = 'schema_version'").fetchone()
    if version is not None and version[0] != SCHEMA_VERSION:
        raise RagError(
            f"the PostgreSQL index at {masked(url)} has schema version {version[0]}; this rag reads version {SCHEMA_VERSION}",
            "upgrade rag, or copy the index with the rag that wrote it",
        )


def schema_exists(url: str) -> bool:
    """Whether an index was created in this database. On a connection of its own, not a pooled one: a pooled
    connection opened before `CREATE EXTENSION vector` would lack the vector type's adapter."""
    with connect(url) as conn:
        row = conn.execute("SELECT to_regclass('rag_meta') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return False
        return conn.execute("SELECT 1 FROM rag_meta WHERE key = 'index_id'").fetchone() is not None


def _configure(conn: "psycopg.Connection[Any]") -> None:
    """Every pooled connection: numpy <-> vector adaptation, and HNSW scans that keep going under a filter."""
    import psycopg
    from pgvector.psycopg import register_vector

    try:
        register_vector(conn)
        conn.execute("SET hnsw.iterative_scan = strict_order")
    except psycopg.Error:  # no index (and no extension) here yet: the schema check reports it
        pass


_pools: dict[str, "ConnectionPool[Any]"] = {}
_pools_lock = threading.Lock()


def pool(url: str) -> "ConnectionPool[Any]":
    """The process's pool for this database (at most POOL_MAX connections)."""
    with _pools_lock:
        found = _pools.get(url)
        if found is None:
            from psycopg_pool import ConnectionPool

            from rag.index.postgres.guarded import GuardedCursor

            found = ConnectionPool(
                url, min_size=0, max_size=POOL_MAX, timeout=POOL_WAIT_S, open=True,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, "cursor_factory": GuardedCursor},
                configure=_configure, check=ConnectionPool.check_connection, name="rag", reconnect_timeout=RECONNECT_S,
            )
            _pools[url] = found
        return found


def acquire(url: str) -> "psycopg.Connection[Any]":
    """A pooled connection for as long as the caller needs it (give it back with `release`).

    A server that is down fails the call at once with `Unavailable` (a direct connection attempt tells a stopped
    server from a busy pool), instead of a wait of POOL_WAIT_S for a connection the pool cannot make."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        try:
            return pool(url).getconn(timeout=QUICK_WAIT_S)
        except PoolTimeout:
            connect(url).close()  # raises Unavailable when the server cannot be reached
            return pool(url).getconn()
    except Unavailable:
        raise
    except PoolTimeout as exc:
        raise RagError(
            f"no connection to the PostgreSQL index at {masked(url)} within {POOL_WAIT_S:.0f} s: {exc}",
            f"all {POOL_MAX} connections of this process are in use; retry later",
        ) from None
    except psycopg.Error as exc:
        raise unreachable(url, exc) from None


def release(url: str, conn: "psycopg.Connection[Any]") -> None:
    pool(url).putconn(conn)


@contextmanager
def borrowed(url: str) -> Iterator["psycopg.Connection[Any]"]:
    """A pooled connection for one short job."""
    conn = acquire(url)
    try:
        yield conn
    finally:
        release(url, conn)


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        for found in _pools.values():
            found.close(timeout=1.0)
        _pools.clear()


# The connection whose transaction the calling thread's catalog has open (a read snapshot or a source write), by
# database: the vector store runs on it, so its reads share the snapshot and its writes join the source's commit.
_bound = threading.local()


def bind(url: str, conn: "psycopg.Connection[Any]") -> None:
    _bound.__dict__.setdefault("conns", {})[url] = conn


def unbind(url: str) -> None:
    _bound.__dict__.setdefault("conns", {}).pop(url, None)


@contextmanager
def current(url: str) -> Iterator["psycopg.Connection[Any]"]:
    """The thread's bound connection for this database, else a pooled one for this job."""
    conn = _bound.__dict__.get("conns", {}).get(url)
    if conn is not None:
        yield conn
        return
    with borrowed(url) as conn:
        yield conn


def close_pool(url: str) -> None:
    """Close this process's pool for a database (before dropping it, or when done with it)."""
    with _pools_lock:
        found = _pools.pop(url, None)
    if found is not None:
        found.close(timeout=1.0)
