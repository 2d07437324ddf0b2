"""Prompt templates are files in `prompts/` (versioned with the code), loaded by name.

A template is Markdown with `{placeholders}` filled by `str.format`; literal braces are doubled.
The folder is found beside the package (a source checkout) or via $RAG_PROMPTS_DIR.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rag.errors import RagError


def prompts_dir() -> Path:
    if os.environ.get("RAG_PROMPTS_DIR"):
        return Path(os.environ["RAG_PROMPTS_DIR"])
    return Path(__file__).resolve().parents[1] / "prompts"


@lru_cache(maxsize=64)
def load_prompt(name: str) -> str:
    path = prompts_dir() / f"{name}.md"
    if not path.is_file():
        raise RagError(f"prompt template {name!r} not found at {path}", "check generation.prompt or $RAG_PROMPTS_DIR")
    return path.read_text(encoding="utf-8")


def render(name: str, **values: str) -> str:
    return load_prompt(name).format(**values)
