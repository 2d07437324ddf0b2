"""Chat models behind one small interface: any OpenAI-compatible endpoint, or a local GGUF via xllamacpp."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Protocol

from rag.config import LLMConfig
from rag.errors import RagError
from rag.openai_client import endpoint_errors, openai_client

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class ChatModel(Protocol):
    """One job: messages in, text out (whole, or as a stream of deltas)."""

    name: str

    def complete(self, messages: list[Message], max_tokens: int | None = None) -> str: ...

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]: ...


def build_chat_model(config: LLMConfig) -> ChatModel | None:
    """The configured chat model, or None when `llm.provider` is `none` (offline)."""
    if config.provider == "none":
        return None
    if config.provider == "llamacpp":
        from rag.generate.llamacpp import LlamaCppChat

        return LlamaCppChat(config)
    return OpenAIChat(config)


class OpenAIChat:
    """OpenAI-compatible /v1/chat/completions (OpenAI, vLLM, llama.cpp server) via the `openai` client,
    which owns timeouts and retries with exponential backoff."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.name = f"{config.model}@{config.base_url or 'api.openai.com'}"

    @cached_property
    def _client(self) -> "object":
        c = self.config
        return openai_client("llm", c.base_url, c.api_key, c.timeout_s, c.max_retries)

    def _request(self, messages: list[Message], max_tokens: int | None, stream: bool) -> "object":
        hint = "start the server or fix llm.base_url (or use --set llm.provider=none for the offline answerer)"
        with endpoint_errors("chat", "llm", self.config.base_url, hint):
            return self._client.chat.completions.create(  # type: ignore[attr-defined]
                model=self.config.model,
                messages=messages,
                temperature=self.config.temperature,
                max_tokens=max_tokens or self.config.max_tokens,
                stream=stream,
            )

    def complete(self, messages: list[Message], max_tokens: int | None = None) -> str:
        response = self._request(messages, max_tokens, stream=False)
        return response.choices[0].message.content or ""  # type: ignore[attr-defined]

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        import openai

        events = self._request(messages, max_tokens, stream=True)
        try:
            for event in events:  # type: ignore[attr-defined]
                if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        except openai.APIError as exc:
            raise RagError(f"the chat endpoint failed mid-stream: {exc}", "retry; check the server's logs") from None
