"""Token counting in the bundled embedding model's tokens: chunk sizes and context budgets are measured in them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.bundled import load_tokenizer

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_TOKENIZER_CACHE: dict[str, "Tokenizer"] = {}


def splitting_tokenizer() -> "Tokenizer":
    """The embedding model's tokenizer with truncation and padding off, for counting tokens."""
    if "splitting" not in _TOKENIZER_CACHE:
        tokenizer = load_tokenizer()
        tokenizer.no_truncation()
        tokenizer.no_padding()
        _TOKENIZER_CACHE["splitting"] = tokenizer
    return _TOKENIZER_CACHE["splitting"]


def count_tokens(text: str) -> int:
    """Tokens of `text` without the model's special tokens, as chunk sizes and the context budget count them
    (the same count is stored per chunk at ingest, so a passage is not re-encoded per question)."""
    return len(splitting_tokenizer().encode(text, add_special_tokens=False).ids)


def token_counts(texts: list[str]) -> list[int]:
    """`count_tokens` of each text, in one batched tokenizer call."""
    if not texts:
        return []
    return [len(encoding.ids) for encoding in splitting_tokenizer().encode_batch(texts, add_special_tokens=False)]
