"""One way to build an `openai` client for any OpenAI-compatible endpoint (chat or embeddings)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, overload

from pydantic import SecretStr

from rag.errors import RagError

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI


@overload
def openai_client(section: str, base_url: str | None, api_key: SecretStr | None, timeout_s: float, max_retries: int,
                  asynchronous: Literal[False] = False) -> OpenAI: ...


@overload
def openai_client(section: str, base_url: str | None, api_key: SecretStr | None, timeout_s: float, max_retries: int,
                  asynchronous: Literal[True]) -> AsyncOpenAI: ...


def openai_client(section: str, base_url: str | None, api_key: SecretStr | None, timeout_s: float, max_retries: int,
                  asynchronous: bool = False) -> OpenAI | AsyncOpenAI:
    """The client for one config section (`llm` or `embedding`); the `openai` package owns retries with backoff.

    A key is needed only for the default endpoint (api.openai.com); local servers get a placeholder.
    `asynchronous` gives an `AsyncOpenAI` (for libraries such as ragas that only call the async API).
    """
    from openai import AsyncOpenAI, OpenAI

    key = api_key.get_secret_value() if api_key else os.environ.get("OPENAI_API_KEY")
    if not key and not base_url:
        raise RagError(
            f"{section}.provider is openai but no API key is set",
            f"export OPENAI_API_KEY, or set {section}.base_url to a local server (vLLM, llama.cpp)",
        )
    if asynchronous:
        return AsyncOpenAI(base_url=base_url, api_key=key or "unused", timeout=timeout_s, max_retries=max_retries)
    return OpenAI(base_url=base_url, api_key=key or "unused", timeout=timeout_s, max_retries=max_retries)


@contextmanager
def endpoint_errors(what: str, section: str, base_url: str | None, unreachable_hint: str = "") -> Iterator[None]:
    """Turn the client's connection and HTTP errors into one clear RagError naming the setting to fix."""
    import openai

    try:
        yield
    except openai.APIConnectionError as exc:
        raise RagError(
            f"cannot reach the {what} endpoint {base_url or 'api.openai.com'}: {exc}",
            unreachable_hint or f"start the server or fix {section}.base_url",
        ) from None
    except openai.APIStatusError as exc:
        raise RagError(
            f"the {what} endpoint refused the request (HTTP {exc.status_code}): {exc.message}",
            f"check {section}.model and the API key",
        ) from None
