"""Embedders turn texts into unit-length float32 vectors; chosen by `embedding.provider`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import EmbeddingConfig


class Embedder(Protocol):
    """One job: texts in, an (n, dim) float32 array of L2-normalised vectors out."""

    model_id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def build_embedder(config: EmbeddingConfig, cache_path: Path | None = None) -> Embedder:
    """The configured embedder, wrapped in the on-disk cache when `cache_path` is given."""
    embedder: Embedder
    if config.provider == "local":
        from rag.index.embedders.minilm import MiniLMOnnxEmbedder

        embedder = MiniLMOnnxEmbedder(config)
    else:
        from rag.index.embedders.openai_endpoint import OpenAIEmbedder

        embedder = OpenAIEmbedder(config)
    if cache_path is None:
        return embedder
    from rag.index.embedders.cache import CachedEmbedder

    return CachedEmbedder(embedder, cache_path)
