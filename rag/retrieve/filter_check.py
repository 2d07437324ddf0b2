"""Filters that cannot match are said plainly, never answered as "the documents do not contain an answer".

Two cases:
- a value nothing can match (a file type that is neither built in nor carried by a readable source, a tag no
  readable source carries) is a usage error (`FilterError`: the CLI exits with 2, the API answers 422) that lists the valid values;
- valid values whose combination keeps no readable source (`--type docx --source 'data/*.pdf'`) search
  nothing: `check_filters` says so, and the answer says it in words.

For a restricted reader (an API key with groups) "readable" means what the key may read: a tag or folder
that only hidden documents carry looks exactly like one that does not exist, so errors leak nothing.
"""

from __future__ import annotations

import difflib
from collections import Counter

from rag.core.access import Access
from rag.core.file_types import EXTENSION_TYPES, FILE_TYPES
from rag.errors import UsageError
from rag.index.contracts import Catalog, SourceRecord
from rag.retrieve.access import SNAPSHOTS
from rag.retrieve.filters import Filters, resolve


class FilterError(UsageError):
    """A filter value that matches nothing this reader may read, or a filter set that keeps no source."""


def check_filters(filters: Filters, manifest: Catalog, access: Access) -> int | None:
    """Raise FilterError for unknown values; return how many chunks the filters keep for `access` (None: no filters)."""
    if not filters.active:
        return None
    records = manifest.sources()
    visible = None if access.everything else SNAPSHOTS.current(manifest).visible(access)
    if set(filters.file_types) - set(FILE_TYPES):  # a plug-in loader's type is known once a readable source has it
        known = [*FILE_TYPES, *sorted({r.file_type for r in _readable(records, manifest, visible)} - set(FILE_TYPES))]
        for value in filters.file_types:
            if value not in known:
                raise FilterError(f"unknown file type {value!r}", _choices("file types", known, value, _type_alias(value)))
    if filters.tags:
        readable_tags = _readable_tags(records, manifest, visible)
        for tag in filters.tags:
            if tag not in readable_tags:
                where = "in this index" if access.everything else "that you may read"
                if not readable_tags:
                    hint = f"no source {where} has a tag" + (": add tags with `rag ingest PATH --tag NAME`" if access.everything else "")
                else:
                    hint = _choices("tags", sorted(readable_tags), tag)
                raise FilterError(f"unknown tag {tag!r}: no source {where} has it", hint)
    allowed = resolve(filters, manifest)
    kept = allowed.chunk_ids if allowed is not None else set()
    return len(kept if visible is None else kept & visible)


def require_matches(filters: Filters, manifest: Catalog) -> None:
    """For the local CLI (reads everything): unknown values and filters that keep nothing are both usage errors."""
    if check_filters(filters, manifest, Access.unrestricted()) == 0:
        held = Counter(record.file_type for record in manifest.sources())
        summary = ", ".join(f"{kind} {count}" for kind, count in sorted(held.items()))
        raise FilterError(
            f"no indexed source matches the filters ({describe(filters)}): nothing would be searched",
            f"loosen or drop a filter; the index holds {sum(held.values())} sources ({summary}), `rag sources` lists them",
        )


def nothing_matches(filters: Filters, access: Access) -> str:
    """The answer given when valid filters keep no readable source."""
    who = "indexed document" if access.everything else "document you may read"
    return f"No {who} matches the filters ({describe(filters)}), so nothing was searched. Loosen or remove a filter."


def describe(filters: Filters) -> str:
    names = {"file_types": "file type", "tags": "tag", "sources": "source"}
    return "; ".join(f"{names[field]}: {', '.join(values)}" for field, values in filters.describe().items())


def _readable(records: list[SourceRecord], manifest: Catalog, visible: frozenset[str] | None) -> list[SourceRecord]:
    return records if visible is None else [r for r in records if manifest.chunk_ids_of(r.path) & visible]


def _readable_tags(records: list[SourceRecord], manifest: Catalog, visible: frozenset[str] | None) -> set[str]:
    tags: set[str] = set()
    for record in records:
        new = set(record.tag_list) - tags
        if new and (visible is None or manifest.chunk_ids_of(record.path) & visible):
            tags |= new
    return tags


def _type_alias(value: str) -> str | None:
    """`md` -> markdown, `txt` -> text: the file type a file extension is read as."""
    return EXTENSION_TYPES.get("." + value.lower().lstrip(".")) if value else None


def _choices(what: str, valid: tuple[str, ...] | list[str], given: str, suggestion: str | None = None) -> str:
    close = suggestion or next(iter(difflib.get_close_matches(given.lower(), [v.lower() for v in valid], n=1)), None)
    guess = next((v for v in valid if close and v.lower() == close), None)
    return f"{what}: {', '.join(valid)}" + (f" (did you mean {guess!r}?)" if guess else "")
