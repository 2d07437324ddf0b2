"""Named implementations of each pluggable kind, chosen by name in the config.

A name resolves, in this order, to:
1. a built-in (`rerank.kind: endpoint`), imported only when first used, so `rag --help` stays fast;
2. a class or factory registered in code: `RERANKERS.register("mine", MyReranker)`;
3. an installed package's entry point in the kind's group (e.g. `[project.entry-points."rag.rerankers"]`,
   `mine = "my_package.rerank:MyReranker"`);
4. a dotted path `my_package.rerank:MyReranker` (or `my_package.rerank.MyReranker`).

What a name resolves to is a factory (a class is one): each kind documents the arguments its factories get
(docs/extending.md). Strings name the built-ins' modules, so this floor imports nothing above it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from rag.errors import RagError

T = TypeVar("T")

_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|\.[A-Za-z_]\w*)")


@dataclass
class Registry(Generic[T]):
    """The implementations of one kind. `builtins` maps names to "module:attribute" strings."""

    kind: str  # for messages: "reranker"
    group: str  # entry-point group: "rag.rerankers"
    setting: str  # the config key that names one: "rerank.kind"
    builtins: Mapping[str, str]
    off: str | None = None  # the name that means "none of this kind" (rerank.kind: none), if there is one
    _registered: dict[str, T | str] = field(default_factory=dict)

    def register(self, name: str, target: T | str) -> None:
        """Make `name` resolve to `target` (a factory, or a "module:attribute" string imported on first use)."""
        if name in self.builtins:
            raise ValueError(f"{name!r} is a built-in {self.kind}; register yours under another name")
        self._registered[name] = target

    def unregister(self, name: str) -> None:
        self._registered.pop(name, None)

    def names(self) -> list[str]:
        """Every name that resolves without a dotted path: built-ins, registered, installed entry points."""
        off = [self.off] if self.off else []
        return [*off, *self.builtins, *sorted(set(self._registered) | set(_entry_points(self.group)))]

    def knows(self, name: str) -> bool:
        """Whether `name` can resolve, without importing anything (a dotted path is only checked for its shape)."""
        return name in self.builtins or name in self._registered or name in _entry_points(self.group) or is_dotted_path(name)

    def unknown(self, name: str) -> str:
        """The message for a name that resolves to nothing."""
        return (
            f"unknown {self.kind} {name!r} ({self.setting}): use one of {', '.join(self.names())}, a name registered "
            f"under the entry-point group {self.group}, or a dotted path such as my_package.module:MyClass"
        )

    def resolve(self, name: str) -> T:
        """The factory `name` stands for; a RagError says what is wrong (unknown name, import failure)."""
        target: Any
        if name in self.builtins:
            target = self.builtins[name]
        elif name in self._registered:
            target = self._registered[name]
        elif name in _entry_points(self.group):
            target = _entry_points(self.group)[name]
        elif is_dotted_path(name):
            target = name
        else:
            raise RagError(self.unknown(name), f"see `rag config` for {self.setting}; docs/extending.md shows how to add one")
        try:
            if isinstance(target, EntryPoint):
                return target.load()
            return import_target(target) if isinstance(target, str) else target
        except (ImportError, AttributeError) as exc:
            raise RagError(
                f"cannot load the {self.kind} {name!r} ({self.setting}): {type(exc).__name__}: {exc}",
                "check that its package is installed and the path names a module and an attribute in it",
            ) from None


def is_dotted_path(name: str) -> bool:
    return ("." in name or ":" in name) and bool(_DOTTED.fullmatch(name))


def import_target(path: str) -> Any:
    """`package.module:attribute` (or `package.module.attribute`) -> the attribute."""
    module_name, colon, attribute = path.partition(":")
    if not colon:
        module_name, _, attribute = path.rpartition(".")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


@lru_cache(maxsize=None)
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=group)}


EMBEDDERS: Registry[Any] = Registry(
    "embedder",
    "rag.embedders",
    "embedding.provider",
    {
        "local": "rag.index.embedders.minilm:MiniLMOnnxEmbedder",
        "static": "rag.index.embedders.static_wordllama:StaticWordLlamaEmbedder",
        "openai": "rag.index.embedders.openai_endpoint:OpenAIEmbedder",
    },
)
VECTOR_STORES: Registry[Any] = Registry(
    "vector store", "rag.vector_stores", "vector_store.kind", {"chroma": "rag.index.vector_store:open_chroma_store"}
)
LOADERS: Registry[Any] = Registry(
    "loader",
    "rag.loaders",
    "ingest.loaders",
    {name: f"rag.ingest.loaders:{name}_loader" for name in ("pdf", "docx", "html", "markdown", "text", "jsonl")},
)
RERANKERS: Registry[Any] = Registry(
    "reranker",
    "rag.rerankers",
    "rerank.kind",
    {name: f"rag.retrieve.rerank:{name.replace('-', '_')}_reranker" for name in ("cross-encoder", "endpoint", "llm")},
    off="none",
)
CHAT_MODELS: Registry[Any] = Registry(
    "chat model",
    "rag.chat_models",
    "llm.provider",
    {"openai": "rag.generate.llm:OpenAIChat", "llamacpp": "rag.generate.llamacpp:LlamaCppChat"},
    off="none",
)
# by URL scheme (`postgresql` for --index postgresql://...); a folder path needs none
INDEX_BACKENDS: Registry[Any] = Registry(
    "index backend", "rag.index_backends", "--index (the URL scheme)",
    {"postgresql": "rag.index.postgres:PostgresBackend", "postgres": "rag.index.postgres:PostgresBackend"},
)
