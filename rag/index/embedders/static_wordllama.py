"""The opt-in fast profile: a static embedding model, WordLlama `l2_supercat` (256 dimensions), bundled in the
`wordllama` wheel (the `fast` extra), so nothing is downloaded.

A static model runs no neural network: a text's vector is the mean of its tokens' rows in a 32,000 x 256 table,
so it embeds thousands of texts per second on one core, at a cost in quality measured in docs/embeddings.md.
It reads every token of a text (nothing is truncated), so chunks cut to MiniLM's token count lose nothing.

`WordLlama.load()` with its defaults looks for the tokenizer under a folder name the wheel does not have and
then downloads it; with the package's own folder as `cache_dir` and downloads disabled it reads only the
bundled files (and fails, rather than fetch anything, if they are missing).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from rag.config import EmbeddingBase
from rag.errors import RagError

if TYPE_CHECKING:
    from wordllama import WordLlamaInference

CONFIG, DIMENSION = "l2_supercat", 256  # the one table the wheel ships (Matryoshka: its first 64 or 128 columns also work)


class StaticWordLlamaEmbedder:
    """Mean-pooled WordLlama token vectors, L2-normalised."""

    dimension = DIMENSION

    def __init__(self, config: EmbeddingBase) -> None:
        self.config = config
        self.model_id = config.model_id()

    @cached_property
    def _model(self) -> WordLlamaInference:
        wordllama = _import_wordllama()
        bundled = Path(wordllama.__file__).parent  # holds weights/ and tokenizers/, the layout cache_dir expects
        return wordllama.WordLlama.load(CONFIG, dim=DIMENSION, cache_dir=bundled, disable_download=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # the library pads each batch to its longest text: batches of near-equal length waste less (1.9x on SciFact)
        order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        # "" has no token (its mean would be 0/0); a space is one token, so every row has a direction
        ordered = [texts[i] or " " for i in order]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        vectors[order] = self._model.embed(ordered, norm=False, batch_size=self.config.effective_batch_size())
        return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


def _import_wordllama() -> ModuleType:
    """Import wordllama, undoing its import-time `logging.basicConfig(level=INFO)` on the root logger, which would
    otherwise print every library's INFO messages on stderr."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError:
        raise RagError(
            "embedding.provider is static but the wordllama package is not installed",
            "pip install 'rag[fast]' (or pip install wordllama==0.4.0.post1), or set embedding.provider=local",
        ) from None
    finally:
        root.handlers[:], root.level = handlers, level
    return wordllama
