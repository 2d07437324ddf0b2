"""The PostgreSQL backend: an index kept whole in one PostgreSQL database with pgvector.

`--index postgresql://user@host:5432/db` (or `postgres://`). The catalog, the vectors (pgvector, HNSW, cosine),
the API keys, the write journal and the embedding cache are tables of that database (`connections.SCHEMA`);
BM25 is built in each process's memory from the committed chunk texts (`stores.ReplicaBM25`). Writers on any
machine coordinate through a session advisory lock; each source is committed in one transaction. Needs the
`postgres` extra (psycopg, psycopg-pool, pgvector). docs/postgres.md is the user's guide.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import VectorStoreBase
from rag.errors import RagError
from rag.index.backends import masked
from rag.index.contracts import Catalog, Embedder, EmbeddingCache, KeyStore, LexicalStore, VectorStore

if TYPE_CHECKING:
    import psycopg

WRITER_LOCK = 72_410_002  # the advisory lock key of the one writer (one index per database)


def _require_driver() -> None:
    try:
        import pgvector  # noqa: F401
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise RagError(
            f"a postgresql:// index needs the postgres extra ({exc.name} is not installed)",
            'install it: pip install "rag[postgres]"',
        ) from None


class WriterLock:
    """The session advisory lock of the index's one writer, on a connection of its own.

    If the writer dies, its connection closes and the server releases the lock: nothing is left to clean up.
    """

    def __init__(self, conn: "psycopg.Connection[Any]") -> None:
        self.conn: "psycopg.Connection[Any] | None" = conn

    def release(self) -> None:
        if self.conn is not None:
            import psycopg

            try:  # unlock before closing: the server ends a closed session asynchronously
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))
            except psycopg.Error:
                pass  # the session is gone, and its lock with it
            self.conn.close()
            self.conn = None


class PostgresBackend:
    """An index in the PostgreSQL database at `url` (one index per database)."""

    def __init__(self, url: str) -> None:
        _require_driver()
        self.url = url
        self.location = masked(url)

    def exists(self) -> bool:
        from rag.index.postgres.connections import schema_exists

        return schema_exists(self.url)

    def lock_writer(self) -> WriterLock:
        from rag.index.postgres.connections import connect, ensure_schema

        conn = connect(self.url)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()
        if not row or not row[0]:
            conn.close()
            raise RagError(
                f"another process is writing to the index {self.location}",
                "wait for that ingest or removal to finish (on whichever machine runs it), then run this again",
            )
        lock = WriterLock(conn)
        try:
            ensure_schema(self.url)
        except BaseException:
            lock.release()
            raise
        return lock

    def open_catalog(self) -> Catalog:
        from rag.index.postgres.catalog import PostgresCatalog

        return PostgresCatalog(self.url, self.location)

    def open_vectors(self, config: VectorStoreBase, catalog: Catalog) -> VectorStore:
        from rag.index.postgres.vectors import PgVectorStore

        return PgVectorStore(self.url)

    def lexical_store(self) -> LexicalStore:
        from rag.index.postgres.stores import ReplicaBM25

        return ReplicaBM25(self.location)

    def embedding_cache(self, inner: Embedder) -> EmbeddingCache:
        from rag.index.postgres.stores import PgEmbeddingCache

        return PgEmbeddingCache(inner, self.url)

    def key_store(self) -> KeyStore:
        from rag.index.postgres.stores import PgKeyStore

        if not self.exists():
            raise RagError(f"no index at {self.location}", f"create one with `rag ingest PATH --index {self.location}`")
        return PgKeyStore(self.url)

    def uploads_dir(self) -> Path:
        from rag.index.postgres.stores import uploads_dir

        return uploads_dir(self.url)

