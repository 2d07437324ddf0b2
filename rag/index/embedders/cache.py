"""On-disk embedding cache keyed by model id + text hash, so no text is embedded twice (the folder backend's `EmbeddingCache`)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from rag.index.contracts import Embedder


class CachedEmbedder:
    """Wraps an embedder; misses are embedded and committed per call, so a crash loses little work."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.embedded_count = 0  # texts actually sent to the model, for reports
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, text_hash BLOB, vector BLOB, PRIMARY KEY (model, text_hash))"
        )
        self._db.commit()

    @staticmethod
    def _hash(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def cached(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Vectors already in the cache, by position in `texts`."""
        hashes = [self._hash(t) for t in texts]
        found = self._lookup(list(dict.fromkeys(hashes)))
        return {i: found[h] for i, h in enumerate(hashes) if h in found}

    def _lookup(self, unique: list[bytes]) -> dict[bytes, np.ndarray]:
        """The stored vectors of these text hashes (storage: a subclass may keep them elsewhere)."""
        found: dict[bytes, np.ndarray] = {}
        for begin in range(0, len(unique), 500):
            part = unique[begin : begin + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT text_hash, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})",
                [self.model_id, *part],
            )
            found.update({h: np.frombuffer(v, dtype=np.float32) for h, v in rows})
        return found

    def _save(self, rows: list[tuple[str, bytes, bytes]]) -> None:
        """Store (model, text hash, float32 bytes) rows, committed at once."""
        self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
        self._db.commit()

    def embed(self, texts: list[str]) -> np.ndarray:
        hits = self.cached(texts)
        missing = [i for i in range(len(texts)) if i not in hits]
        unique_missing = list(dict.fromkeys(texts[i] for i in missing))
        fresh = self.inner.embed(unique_missing) if unique_missing else None
        if fresh is not None:
            self.embedded_count += len(unique_missing)
            self._save([(self.model_id, self._hash(t), fresh[j].astype(np.float32).tobytes()) for j, t in enumerate(unique_missing)])
            by_text = {t: fresh[j] for j, t in enumerate(unique_missing)}
            for i in missing:
                hits[i] = by_text[texts[i]]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([hits[i] for i in range(len(texts))]).astype(np.float32)

    def close(self) -> None:
        self._db.close()
