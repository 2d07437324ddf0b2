"""Any OpenAI-compatible /v1/embeddings endpoint (OpenAI, vLLM, llama.cpp, TEI's OpenAI route)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from rag.config import EmbeddingBase
from rag.openai_client import endpoint_errors, openai_client

if TYPE_CHECKING:
    from openai import OpenAI


class OpenAIEmbedder:
    """Batched calls through the `openai` client, which owns timeouts and retries with backoff."""

    def __init__(self, config: EmbeddingBase) -> None:
        self.config = config
        self.model_id = config.model_id()

    @cached_property
    def _client(self) -> OpenAI:
        c = self.config
        return openai_client("embedding", c.base_url, c.api_key, c.timeout_s, c.max_retries)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors: list[list[float]] = []
        for begin in range(0, len(texts), self.config.effective_batch_size()):
            batch = texts[begin : begin + self.config.effective_batch_size()]
            with endpoint_errors("embedding", "embedding", self.config.base_url):
                response = self._client.embeddings.create(model=self.config.model, input=batch)
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        if not vectors:
            return np.zeros((0, 0), dtype=np.float32)
        array = np.asarray(vectors, dtype=np.float32)
        return array / np.clip(np.linalg.norm(array, axis=1, keepdims=True), 1e-12, None)
