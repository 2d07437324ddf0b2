"""Metadata filters, resolved against the manifest into the set of sources a query may see.

Resolving to sources first means every retriever (dense and BM25) applies the same filter before
ranking, rather than dropping results after the fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.core.paths import path_matches
from rag.index.contracts import Catalog

__all__ = ["Allowed", "Filters", "path_matches", "resolve"]


@dataclass(frozen=True, slots=True)
class Filters:
    """Each field narrows the search; an empty field does not filter."""

    sources: tuple[str, ...] = ()  # globs over the path as given at ingest, e.g. "data/*.pdf", "data/hr/**"
    file_types: tuple[str, ...] = ()  # pdf, docx, html, markdown, text, jsonl, external
    tags: tuple[str, ...] = ()  # a source matches if it has any of these tags

    @property
    def active(self) -> bool:
        return bool(self.sources or self.file_types or self.tags)

    def describe(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in (("sources", self.sources), ("file_types", self.file_types), ("tags", self.tags)) if v}


@dataclass(slots=True)
class Allowed:
    """What a filtered query may see: source keys (absolute paths) and their chunk ids."""

    sources: set[str] = field(default_factory=set)
    chunk_ids: set[str] = field(default_factory=set)


def resolve(filters: Filters, manifest: Catalog) -> Allowed | None:
    """None when nothing is filtered (everything is allowed)."""
    if not filters.active:
        return None
    allowed = Allowed()
    for record in manifest.sources():
        if filters.file_types and record.file_type not in filters.file_types:
            continue
        if filters.tags and not set(filters.tags) & set(record.tag_list):
            continue
        if filters.sources and not any(path_matches(record.display_path, pattern) or path_matches(record.path, pattern) for pattern in filters.sources):
            continue
        allowed.sources.add(record.path)
        allowed.chunk_ids |= manifest.chunk_ids_of(record.path)
    return allowed

