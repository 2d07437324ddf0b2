"""Per-document read permissions, resolved against one committed state of the manifest.

Who reads (`Access`, reader groups) is defined on the ground floor, `rag.core.access`, with the rule.
`Snapshot` holds, for one manifest generation, the committed chunk ids and which groups may read
each. Searchers intersect every candidate list with `Snapshot.visible(access)` *before* ranking,
so a chunk outside the reader's groups (or one a writer has not committed yet) is never scored,
fused, normalised, cited or traced.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from rag.core.access import GROUP_NAME, Access, parse_groups
from rag.index.contracts import Catalog

__all__ = ["GROUP_NAME", "SNAPSHOTS", "Access", "Snapshot", "SnapshotCache", "parse_groups"]


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
    """The latest snapshot per index, shared by every pipeline of the process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Snapshot] = {}

    def current(self, manifest: Catalog) -> Snapshot:
        """The snapshot of the generation `manifest` sees now (inside a read transaction: that state)."""
        generation = manifest.generation()
        key = manifest.location
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


def _build(manifest: Catalog, generation: int) -> Snapshot:
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
