"""Any OpenAI-compatible /v1/embeddings endpoint (OpenAI, vLLM, llama.cpp, TEI's OpenAI route)."""

from __future__ import annotations

import os
from functools import cached_property

import numpy as np

from rag.config import EmbeddingConfig
from rag.errors import RagError


class OpenAIEmbedder:
    """Batched calls through the `openai` client, which owns timeouts and retries with backoff."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.config = config
        self.model_id = config.model_id()

    @cached_property
    def _client(self) -> "object":
        from openai import OpenAI

        key = self.config.api_key.get_secret_value() if self.config.api_key else os.environ.get("OPENAI_API_KEY")
        if not key and not self.config.base_url:
            raise RagError(
                "embedding.provider is openai but no API key is set",
                "export OPENAI_API_KEY, or set embedding.base_url to a local server such as vLLM",
            )
        return OpenAI(
            base_url=self.config.base_url,
            api_key=key or "unused",
            timeout=self.config.timeout_s,
            max_retries=self.config.max_retries,
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        import openai

        vectors: list[list[float]] = []
        for begin in range(0, len(texts), self.config.effective_batch_size()):
            batch = texts[begin : begin + self.config.effective_batch_size()]
            try:
                response = self._client.embeddings.create(model=self.config.model, input=batch)  # type: ignore[attr-defined]
            except openai.APIConnectionError as exc:
                raise RagError(
                    f"cannot reach the embedding endpoint {self.config.base_url or 'api.openai.com'}: {exc}",
                    "start the server or fix embedding.base_url",
                ) from None
            except openai.APIStatusError as exc:
                raise RagError(
                    f"the embedding endpoint refused the request (HTTP {exc.status_code}): {exc.message}",
                    "check embedding.model and the API key",
                ) from None
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        if not vectors:
            return np.zeros((0, 0), dtype=np.float32)
        array = np.asarray(vectors, dtype=np.float32)
        return array / np.clip(np.linalg.norm(array, axis=1, keepdims=True), 1e-12, None)
