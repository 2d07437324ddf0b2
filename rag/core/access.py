"""Who is reading: reader groups and `Access`, shared by ingestion (groups given to documents), retrieval (what a
reader may see) and the server (the groups of an API key).

The rule (documented in the README, "Serving an API"):
- a document ingested without groups is readable by every reader;
- a document with groups is readable only by readers sharing at least one of them;
- `Access.unrestricted()` (admin keys and the local CLI, which reads the index files anyway) reads all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def parse_groups(value: str | Sequence[object] | None) -> tuple[str, ...]:
    """`"staff, engineering"` or `["staff", "engineering"]` -> sorted unique names; ValueError says what is wrong."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"group names must be strings, got {item!r}")
        name = item.strip()
        if not name:
            continue
        if not GROUP_NAME.match(name):
            raise ValueError(f"bad group name {name!r}: use letters, digits and _ . : - (at most 64 characters)")
        names.add(name)
    return tuple(sorted(names))


@dataclass(frozen=True, slots=True)
class Access:
    """Who is reading. Passed separately from user filters, which can only narrow what access allows."""

    groups: frozenset[str] = frozenset()
    everything: bool = False

    @classmethod
    def unrestricted(cls) -> "Access":
        return cls(everything=True)

    @classmethod
    def of_groups(cls, groups: tuple[str, ...] | list[str] | frozenset[str]) -> "Access":
        return cls(groups=frozenset(groups))

    def describe(self) -> str:
        return "all documents" if self.everything else f"groups {sorted(self.groups)} + documents without groups"
