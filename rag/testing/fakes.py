"""Test doubles that speak the real contracts, for contract suites and users' tests (no model, no network)."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from rag.config import EmbeddingBase

DIMENSIONS = 64


class HashEmbedder:
    """A deterministic hashed bag of words: texts sharing words get near vectors. An `Embedder` plug-in
    (`embedding.provider: rag.testing.fakes:HashEmbedder`) for tests that need vectors but not a model."""

    def __init__(self, config: EmbeddingBase | None = None) -> None:
        self.model_id = f"hash-bag-of-words-{DIMENSIONS}"

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
            vectors[row, 0] += 1e-3  # no zero rows: every text has a direction
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
