"""Embedders turn texts into unit-length float32 vectors; chosen by `embedding.provider` from the registry.

Built-ins: `local` (the bundled MiniLM on onnxruntime), `static` (the opt-in fast profile: a static WordLlama model,
the `fast` extra) and `openai` (any /v1/embeddings endpoint). Any other name is a plug-in
(`rag.core.registry.EMBEDDERS`): its factory is called with the embedding section and returns an `Embedder`
(`rag.index.contracts`); `rag.testing.EmbedderContract` checks one.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.config import EmbeddingBase
from rag.core.registry import EMBEDDERS
from rag.index.contracts import Embedder

__all__ = ["Embedder", "EmbedderFactory", "build_embedder"]

EmbedderFactory = Callable[[EmbeddingBase], Embedder]


def build_embedder(config: EmbeddingBase) -> Embedder:
    """The configured embedder (uncached: the index wraps it in its embedding cache)."""
    factory: EmbedderFactory = EMBEDDERS.resolve(config.provider)
    return factory(config)
