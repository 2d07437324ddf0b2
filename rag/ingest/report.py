"""What an ingest or removal did, for the summary table and `--json`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.index.writer import Committed


@dataclass(frozen=True, slots=True)
class FileProblem:
    path: str
    reason: str


@dataclass(slots=True)
class IngestReport:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[FileProblem] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)
    notes: list[FileProblem] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    texts_embedded: int = 0
    seconds: float = 0.0
    repaired: dict[str, Any] | None = None

    def count(self, committed: Iterable[Committed]) -> None:
        """Add sources the writer committed: new or changed, chunks added and removed."""
        for source in committed:
            self.chunks_added += source.added
            self.chunks_removed += source.removed
            if source.new:
                self.new += 1
            else:
                self.changed += 1

    @property
    def exit_code(self) -> int:
        """0 when every file was read; 1 when any failed (unsupported types are skipped, not failed)."""
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["failed_count"] = len(self.failed)
        data["skipped_count"] = len(self.skipped)
        return data
