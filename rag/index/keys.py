"""The folder backend's `KeyStore`: API keys, stored hashed in the index folder (`keys.sqlite`); the secret is shown
once, at creation.

A key is `rag_<id>_<secret>`: the id finds the row, the SHA-256 of the whole key is compared in
constant time. A plain hash (not a slow password hash) is enough because keys are 256-bit random
strings, not guessable passwords. Every request reads the store, so a revocation applies at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import RagError
from rag.index.contracts import ApiKey

KEYS_FILE = "keys.sqlite"
PREFIX = "rag_"

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,             -- SHA-256 hex of the whole key; the key itself is never stored
    groups TEXT NOT NULL,           -- JSON list
    admin INTEGER NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS active_names ON keys(name) WHERE revoked_at IS NULL;
"""


class SqliteKeyStore:
    """API keys in `keys.sqlite` inside an index folder."""

    def __init__(self, index_dir: Path) -> None:
        if not index_dir.is_dir():
            raise RagError(f"no index at {index_dir}", f"create one with `rag ingest PATH --index {index_dir}`")
        self.path = index_dir / KEYS_FILE
        with self._db() as db:
            db.executescript(SCHEMA)
        os.chmod(self.path, 0o600)  # hashes only, but nobody else needs to read them

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        finally:
            db.close()

    def create(self, name: str, groups: tuple[str, ...], admin: bool = False) -> tuple[ApiKey, str]:
        """A new key; returns its record and the secret (shown once, never stored)."""
        record, secret = new_key(name, groups, admin)
        try:
            with self._db() as db:
                db.execute(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    (record.key_id, record.name, digest(secret), json.dumps(list(record.groups)), int(admin), record.created_at),
                )
        except sqlite3.IntegrityError:
            raise name_taken(record.name) from None
        return record, secret

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        query = "SELECT key_id, name, groups, admin, created_at, revoked_at FROM keys"
        if not include_revoked:
            query += " WHERE revoked_at IS NULL"
        with self._db() as db:
            rows = db.execute(query + " ORDER BY name, created_at").fetchall()
        return [record_of(row) for row in rows]

    def revoke(self, name: str) -> bool:
        with self._db() as db:
            changed = db.execute("UPDATE keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (time.time(), name)).rowcount
        return changed > 0

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key `token` belongs to, or None (unknown, malformed or revoked)."""
        key_id = key_id_of(token)
        if key_id is None:
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT key_id, name, groups, admin, created_at, revoked_at, hash FROM keys WHERE key_id = ? AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
        return verified(row, token)

    def export_hashed(self) -> list[tuple[ApiKey, str]]:
        with self._db() as db:
            rows = db.execute("SELECT key_id, name, groups, admin, created_at, revoked_at, hash FROM keys ORDER BY created_at").fetchall()
        return [(record_of(row[:6]), row[6]) for row in rows]

    def import_hashed(self, keys: list[tuple[ApiKey, str]]) -> int:
        with self._db() as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?, ?, ?, ?)", [hashed_row(k, h) for k, h in keys])
            return db.total_changes - before


def hashed_row(key: ApiKey, hashed: str) -> tuple[object, ...]:
    """A key's stored row (the column order of both backends' key tables)."""
    return (key.key_id, key.name, hashed, json.dumps(list(key.groups)), key.admin, key.created_at, key.revoked_at)


def new_key(name: str, groups: tuple[str, ...], admin: bool) -> tuple[ApiKey, str]:
    """A new key's record and its secret (every key store makes keys this way)."""
    name = name.strip()
    if not name:
        raise RagError("a key needs a name", "pass --name, e.g. --name alice")
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return ApiKey(key_id, name, tuple(sorted(set(groups))), admin, time.time()), secret


def name_taken(name: str) -> RagError:
    return RagError(f"an active key named {name!r} exists", f"revoke it first (`rag keys revoke {name}`) or pick another name")


def key_id_of(token: str) -> str | None:
    """The key id a well-formed token names, else None."""
    if not token.startswith(PREFIX) or token.count("_") < 2:
        return None
    return token[len(PREFIX) :].split("_", 1)[0]


def verified(row: tuple | None, token: str) -> ApiKey | None:
    """The key of a stored row (its record columns, then the hash) when `token` hashes to it, else None."""
    if row is None or not hmac.compare_digest(row[6], digest(token)):
        return None
    return record_of(row[:6])


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def record_of(row: tuple) -> ApiKey:
    return ApiKey(row[0], row[1], tuple(json.loads(row[2])), bool(row[3]), row[4], row[5])
