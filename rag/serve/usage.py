"""The `usage` of a chat completion, counted with the embedding model's own tokenizer (bundled, offline).

prompt_tokens: the messages received (every role) plus the passages the answerer read; completion_tokens: the
answer text. With an LLM behind the server these are close to, not equal to, what that model's tokenizer counts;
never tiktoken, which downloads its files on first use.
"""

from __future__ import annotations

from collections.abc import Iterable

from rag.core.tokens import token_counts
from rag.types import Answer


def chat_usage(messages: Iterable[str], answer: Answer) -> dict[str, int]:
    prompt = sum(token_counts([text for text in messages if text] + [p.text for p in answer.passages]))
    completion = sum(token_counts([answer.answer]))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
