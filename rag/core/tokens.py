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
    """Tokens of `text` with the model's two special tokens ([CLS], [SEP]), as the context budget counts them."""
    return len(splitting_tokenizer().encode(text).ids)
