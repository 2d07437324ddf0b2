"""`PgVectorStore`: chunk vectors in the `rag_vectors` table, searched by pgvector's HNSW index (cosine).

The column takes its dimension from the first vectors written (an HNSW index needs one); `drop()` forgets it,
so a new embedding model may bring another. The store uses its catalog's connection, so a writer's vector
writes belong to the source's transaction and readers see them only once the source is committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rag.index.contracts import Metadata
from rag.index.postgres.connections import current

HNSW_INDEX = "rag_vectors_hnsw"
MIN_EF_SEARCH = 40  # pgvector's default; raised per query so k results can come back


class PgVectorStore:
    """The pgvector store of the database at `url`. It runs on the connection of the calling thread's open
    catalog transaction (`connections.current`), else on a pooled connection per call, so one handle may be
    shared by every thread and `Index` of a process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loading = False  # between begin_load and end_load: the HNSW index is built once, at the end

    def _dimension(self, conn: Any) -> int | None:
        row = conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'rag_vectors'::regclass AND attname = 'embedding'"
        ).fetchone()
        return int(row[0]) if row and row[0] > 0 else None

    def _fix_dimension(self, conn: Any, dimension: int) -> None:
        """Give the column its dimension and build the HNSW index (once, on the first vectors written; during a
        load, at its end)."""
        if self._dimension(conn) is None:
            conn.execute(f"ALTER TABLE rag_vectors ALTER COLUMN embedding TYPE vector({int(dimension)})")
            if not self._loading:
                self._create_index(conn)

    @staticmethod
    def _create_index(conn: Any) -> None:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON rag_vectors USING hnsw (embedding vector_cosine_ops)")

    def begin_load(self) -> None:
        """A writer filling an empty index: leave the HNSW index out until `end_load`. Inserting into a live HNSW
        graph costs a graph search per row, in the server, and was the slowest part of a large first ingest;
        pgvector builds the graph after a load several times faster (in memory, up to maintenance_work_mem, and
        in parallel workers). Until then a query scans the vectors exactly: right, only slower."""
        with current(self.url) as conn:
            if self._dimension(conn) is None or not conn.execute("SELECT EXISTS (SELECT 1 FROM rag_vectors)").fetchone()[0]:
                conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
                self._loading = True

    def end_load(self) -> None:
        """Build the HNSW index if it is missing (after a load, or a load a crash interrupted)."""
        self._loading = False
        with current(self.url) as conn:
            if self._dimension(conn) is not None:
                self._create_index(conn)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[Metadata]) -> None:
        if not len(ids):
            return
        matrix = np.asarray(vectors, dtype=np.float32)
        with current(self.url) as conn, conn.cursor() as cursor:
            self._fix_dimension(conn, matrix.shape[1])
            cursor.executemany(
                "INSERT INTO rag_vectors VALUES (%s, %s, %s) "
                "ON CONFLICT (chunk_id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata",
                [(chunk_id, matrix[i], json.dumps(metadatas[i])) for i, chunk_id in enumerate(ids)],
            )

    def delete(self, ids: Iterable[str]) -> None:
        with current(self.url) as conn:
            conn.execute("DELETE FROM rag_vectors WHERE chunk_id = ANY(%s)", (list(ids),))

    def ids(self) -> set[str]:
        with current(self.url) as conn:
            return {row[0] for row in conn.execute("SELECT chunk_id FROM rag_vectors").fetchall()}

    def count(self) -> int:
        with current(self.url) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM rag_vectors").fetchone()[0])

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        with current(self.url) as conn:
            return self._query(conn, vector, k, where)

    def _query(self, conn: Any, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        clauses, params = [], []
        for key, value in (where or {}).items():
            clauses.append("metadata->>%s = %s")
            params += [key, str(value)]
        condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = np.asarray(vector, dtype=np.float32)
        with conn.pipeline():  # the setting and the search travel together: one round trip
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(max(MIN_EF_SEARCH, min(k, 1000))),))
            rows = conn.execute(
                f"SELECT chunk_id, 1 - (embedding <=> %s) FROM rag_vectors {condition} ORDER BY embedding <=> %s LIMIT %s",
                [query, *params, query, k],
            ).fetchall()
        return [(row[0], float(row[1])) for row in rows]

    def get_vectors(self, ids: Iterable[str]) -> tuple[list[str], np.ndarray]:
        with current(self.url) as conn:
            rows = conn.execute(
                "SELECT chunk_id, embedding FROM rag_vectors WHERE chunk_id = ANY(%s) ORDER BY chunk_id", (sorted(set(ids)),)
            ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [row[0] for row in rows], np.vstack([_array(row[1]) for row in rows])

    def drop(self) -> None:
        with current(self.url) as conn:
            conn.execute("DELETE FROM rag_vectors")
            conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
            conn.execute("ALTER TABLE rag_vectors ALTER COLUMN embedding TYPE vector")

    def refreshed(self) -> "PgVectorStore":
        return self  # a database connection always sees every committed write


def _array(value: Any) -> np.ndarray:
    """A stored vector as float32 (pgvector's adapter gives a `Vector`; newer ones may give an array)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
