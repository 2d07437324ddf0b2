"""Per-document read permissions, resolved against one committed state of the manifest.

The rule (documented in the README, "Serving an API"):
- a document ingested without groups is readable by every reader;
- a document with groups is readable only by readers sharing at least one of them;
- `Access.unrestricted()` (admin keys and the local CLI, which reads the index files anyway) reads all.

`Snapshot` holds, for one manifest generation, the committed chunk ids and which groups may read
each. Searchers intersect every candidate list with `Snapshot.visible(access)` *before* ranking,
so a chunk outside the reader's groups (or one a writer has not committed yet) is never scored,
fused, normalised, cited or traced.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from rag.index.manifest import Manifest

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def parse_groups(value: str | list[object] | tuple[object, ...] | None) -> tuple[str, ...]:
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


@dataclass(slots=True)
class Snapshot:
    """The committed chunk ids of one manifest generation and who may read them."""

    generation: int
    committed: frozenset[str]
    public: frozenset[str]  # chunks of documents without groups
    by_group: dict[str, set[str]]
    display: dict[str, str]  # source key -> path as given at ingest
    groups_epoch: int = 0  # changes when an existing document's groups change
    _visible: dict[frozenset[str], frozenset[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def visible(self, access: Access) -> frozenset[str]:
        """Chunk ids `access` may see; computed once per group set and generation."""
        if access.everything:
            return self.committed
        with self._lock:
            if access.groups not in self._visible:
                allowed = set(self.public)
                for group in access.groups:
                    allowed |= self.by_group.get(group, set())
                self._visible[access.groups] = frozenset(allowed)
            return self._visible[access.groups]


class SnapshotCache:
    """The latest snapshot per manifest file, shared by every pipeline of the process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Snapshot] = {}

    def current(self, manifest: Manifest) -> Snapshot:
        """The snapshot of the generation `manifest` sees now (inside a read transaction: that state)."""
        generation = manifest.generation()
        key = str(manifest.path)
        with self._lock:
            cached = self._latest.get(key)
        if cached is not None and cached.generation == generation:
            return cached
        snapshot = _build(manifest, generation)
        with self._lock:
            latest = self._latest.get(key)
            if latest is None or latest.generation <= generation:
                self._latest[key] = snapshot
        return snapshot


def _build(manifest: Manifest, generation: int) -> Snapshot:
    committed: set[str] = set()
    public: set[str] = set()
    by_group: dict[str, set[str]] = {}
    for chunk_id, groups_json in manifest.chunk_groups():
        committed.add(chunk_id)
        groups = json.loads(groups_json)
        if not groups:
            public.add(chunk_id)
        for group in groups:
            by_group.setdefault(group, set()).add(chunk_id)
    display = {record.path: record.display_path for record in manifest.sources()}
    epoch = int(manifest.get_meta("groups_epoch") or 0)
    return Snapshot(generation, frozenset(committed), frozenset(public), by_group, display, epoch)


SNAPSHOTS = SnapshotCache()
