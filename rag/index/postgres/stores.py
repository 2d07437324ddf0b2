"""The PostgreSQL backend's smaller stores: API keys, the embedding cache, and the per-replica BM25."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
import numpy as np

from rag.config import BM25Config
from rag.index.bm25 import BM25Index, catch_up
from rag.index.contracts import ApiKey, Catalog, Embedder
from rag.index.embedders.cache import CachedEmbedder
from rag.index.keys import digest, hashed_row, key_id_of, name_taken, new_key, record_of, verified
from rag.index.postgres.connections import borrowed


class PgKeyStore:
    """API keys in `rag_keys`, hashed as the folder backend hashes them; read on every request."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create(self, name: str, groups: tuple[str, ...], admin: bool = False) -> tuple[ApiKey, str]:
        import psycopg

        record, secret = new_key(name, groups, admin)
        try:
            with borrowed(self.url) as conn:
                conn.execute(
                    "INSERT INTO rag_keys VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                    (record.key_id, record.name, digest(secret), json.dumps(list(record.groups)), admin, record.created_at),
                )
        except psycopg.errors.UniqueViolation:
            raise name_taken(record.name) from None
        return record, secret

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with borrowed(self.url) as conn:
            rows = conn.execute(
                f"SELECT key_id, name, groups, admin, created_at, revoked_at FROM rag_keys{where} ORDER BY name, created_at"
            ).fetchall()
        return [record_of(row) for row in rows]

    def revoke(self, name: str) -> bool:
        with borrowed(self.url) as conn:
            changed = conn.execute(
                "UPDATE rag_keys SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL", (time.time(), name)
            ).rowcount
        return changed > 0

    def authenticate(self, token: str) -> ApiKey | None:
        key_id = key_id_of(token)
        if key_id is None:
            return None
        with borrowed(self.url) as conn:
            row = conn.execute(
                "SELECT key_id, name, groups, admin, created_at, revoked_at, hash FROM rag_keys WHERE key_id = %s AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
        return verified(row, token)

    def export_hashed(self) -> list[tuple[ApiKey, str]]:
        with borrowed(self.url) as conn:
            rows = conn.execute(
                "SELECT key_id, name, groups, admin, created_at, revoked_at, hash FROM rag_keys ORDER BY created_at"
            ).fetchall()
        return [(record_of(row[:6]), row[6]) for row in rows]

    def import_hashed(self, keys: list[tuple[ApiKey, str]]) -> int:
        added = 0
        with borrowed(self.url) as conn, conn.transaction():
            for key, hashed in keys:  # ON CONFLICT with no target also skips an active key's name taken here
                added += conn.execute(
                    "INSERT INTO rag_keys VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", hashed_row(key, hashed)
                ).rowcount
        return added


class PgEmbeddingCache(CachedEmbedder):
    """The embedding cache in `rag_embeddings`: shared by every writer of the index, wherever it runs."""

    def __init__(self, inner: Embedder, url: str) -> None:  # noqa: D107 - no SQLite file: the rows live in Postgres
        self.inner = inner
        self.model_id = inner.model_id
        self.embedded_count = 0
        self.url = url

    def _lookup(self, unique: list[bytes]) -> dict[bytes, np.ndarray]:
        if not unique:
            return {}
        with borrowed(self.url) as conn:
            rows = conn.execute(
                "SELECT text_hash, vector FROM rag_embeddings WHERE model = %s AND text_hash = ANY(%s)", (self.model_id, unique)
            ).fetchall()
        return {bytes(h): np.frombuffer(v, dtype=np.float32) for h, v in rows}

    def _save(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        with borrowed(self.url) as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany("INSERT INTO rag_embeddings VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", rows)

    def close(self) -> None:
        pass


class ReplicaBM25:
    """BM25 kept in this process's memory, one version per catalog generation.

    Nothing is stored: every replica brings its own up to date when it first searches after a commit, tokenising
    only the chunks committed since its last version (`rag.index.bm25.catch_up`; the first build reads them all).
    One version per index is kept per process; requests in flight keep theirs.
    """

    _built: dict[tuple[str, str], tuple[str, BM25Index]] = {}  # (location, settings) -> (generation, last build)
    _lock = threading.Lock()

    def __init__(self, location: str) -> None:
        self.location = location

    def generation(self, catalog: Catalog) -> str | None:
        return str(catalog.generation())

    def refresh(self, catalog: Catalog, config: BM25Config) -> bool:
        """Nothing to publish: readers build from the committed chunks. True when this process rebuilt."""
        before = self._built.get((self.location, config.model_dump_json()))
        return self.load(catalog, config) is not (before[1] if before else None)

    def load(self, catalog: Catalog, config: BM25Config) -> BM25Index:
        key = (self.location, config.model_dump_json())
        generation = str(catalog.generation())
        with self._lock:
            found = self._built.get(key)
            if found is not None and found[0] == generation:
                return found[1]
            index = catch_up(found[1] if found else None, catalog, config)
            self._built[key] = (generation, index)
            return index


def uploads_dir(url: str) -> Path:
    """Files sent to a server of this index are kept on the replica that received them (see docs/postgres.md)."""
    from rag.index.backends import work_folder

    return work_folder(url) / "uploads"
