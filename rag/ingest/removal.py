"""Which indexed sources a removal takes: exact names, folders only when asked, never the whole index by accident.

A path names a source when it equals the source's key (`path` in /v1/sources), its display path (`rag sources`),
or resolves to the same file. A folder path takes every source below it, but only where the caller allows
folders (the CLI does; the HTTP API with `"recursive": true`). A blank path, or folders that would take every
source of the index, are usage errors: nothing is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import UsageError
from rag.index.contracts import SourceRecord
from rag.ingest.report import FileProblem

NOT_INDEXED = "not in the index (see `rag sources`)"


def reject_blank_paths(paths: Sequence[str], hint: str) -> None:
    """A blank path would resolve to the current folder: refuse it rather than guess."""
    if any(not given.strip() for given in paths):
        raise UsageError("a path is empty or blank", hint)


@dataclass(slots=True)
class RemovalPlan:
    """The sources to remove (keys, in manifest order, each once) and the paths that named none."""

    sources: list[str] = field(default_factory=list)
    per_path: dict[str, int] = field(default_factory=dict)  # given path -> sources it takes
    folders: list[str] = field(default_factory=list)  # given paths that matched as folders
    problems: list[FileProblem] = field(default_factory=list)


def plan_removal(records: Sequence[SourceRecord], paths: Sequence[str], *, folders: bool, everything: bool = False) -> RemovalPlan:
    """What removing `paths` takes from an index holding `records`. Raises UsageError, before anything is removed,
    for a blank path or folder paths that would empty the index without `everything`."""
    reject_blank_paths(paths, "give the source's path as `rag sources` (or GET /v1/sources) lists it; nothing was removed")
    plan = RemovalPlan()
    chosen: set[str] = set()
    for given in paths:
        target = _resolved(given)
        exact = [r.path for r in records if given in (r.path, r.display_path) or r.path == target]
        below = [r.path for r in records if target is not None and r.path.startswith(target.rstrip("/") + "/")]
        if exact:
            matches = exact
        elif below and folders:
            matches = below
            plan.folders.append(given)
        elif below:
            plan.problems.append(FileProblem(given, f"is a folder holding {len(below)} sources: name them one by one, or remove the folder recursively"))
            continue
        else:
            plan.problems.append(FileProblem(given, NOT_INDEXED))
            continue
        plan.per_path[given] = len(matches)
        chosen.update(matches)
    plan.sources = [r.path for r in records if r.path in chosen]
    if plan.folders and records and len(plan.sources) == len(records) and not everything:
        raise UsageError(
            f"{', '.join(plan.folders)} would remove every source of the index ({len(records)})",
            "name the sources one by one, or empty the index on purpose with `rag remove --all`; nothing was removed",
        )
    return plan


def _resolved(given: str) -> str | None:
    """The absolute form of a file path, or None for a string no file path can have (e.g. a NUL byte)."""
    try:
        return Path(given).resolve().as_posix()
    except (OSError, ValueError):
        return None
