"""Chat models behind one small interface (`rag.core.chat.ChatModel`): any OpenAI-compatible endpoint, a local
GGUF via xllamacpp, or a plug-in named by `llm.provider` (its factory gets the llm section)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rag.config import LLMBase
from rag.core.chat import ChatModel, Message
from rag.core.registry import CHAT_MODELS
from rag.errors import RagError
from rag.openai_client import endpoint_errors, openai_client

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = ["ChatModel", "Message", "OpenAIChat", "build_chat_model"]

UNREACHABLE_HINT = "start the server or fix llm.base_url (or use --set llm.provider=none for the offline answerer)"


ChatModelFactory = Callable[[LLMBase], ChatModel]


def build_chat_model(config: LLMBase) -> ChatModel | None:
    """The configured chat model (`llm.provider`, from `rag.core.registry.CHAT_MODELS`), or None when it is `none`."""
    if config.provider == "none":
        return None
    factory: ChatModelFactory = CHAT_MODELS.resolve(config.provider)
    return factory(config)


class OpenAIChat:
    """OpenAI-compatible /v1/chat/completions (OpenAI, vLLM, llama.cpp server) via the `openai` client,
    which owns timeouts and retries with exponential backoff."""

    def __init__(self, config: LLMBase) -> None:
        self.config = config
        self.name = f"{config.model}@{config.base_url or 'api.openai.com'}"

    @cached_property
    def _client(self) -> OpenAI:
        c = self.config
        return openai_client("llm", c.base_url, c.api_key, c.timeout_s, c.max_retries)

    def _arguments(self, messages: list[Message], max_tokens: int | None) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": max_tokens or self.config.max_tokens,
        }

    def complete(self, messages: list[Message], max_tokens: int | None = None) -> str:
        with endpoint_errors("chat", "llm", self.config.base_url, UNREACHABLE_HINT):
            response = self._client.chat.completions.create(**self._arguments(messages, max_tokens), stream=False)
        return response.choices[0].message.content or ""

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        import openai

        with endpoint_errors("chat", "llm", self.config.base_url, UNREACHABLE_HINT):
            events = self._client.chat.completions.create(**self._arguments(messages, max_tokens), stream=True)
        try:
            for event in events:
                if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        except openai.APIError as exc:
            raise RagError(f"the chat endpoint failed mid-stream: {exc}", "retry; check the server's logs") from None
