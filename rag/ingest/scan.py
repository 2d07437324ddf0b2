"""Find the files under the paths a user gave, honouring hidden-file and exclude rules."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import IngestConfig


@dataclass(frozen=True, slots=True)
class FoundFile:
    path: Path  # absolute
    display: str  # as the user would write it: the given path joined with the relative part


@dataclass(slots=True)
class ScanResult:
    files: list[FoundFile] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)  # absolute roots: deletions under them are detected
    missing: list[str] = field(default_factory=list)


def scan(paths: list[str], config: IngestConfig) -> ScanResult:
    result = ScanResult()
    seen: set[Path] = set()
    for given in paths:
        root = Path(given)
        try:
            absolute = root.resolve()
            kind = "file" if absolute.is_file() else "folder" if absolute.is_dir() else None
        except (OSError, ValueError):  # no file can have this name (a NUL byte, an unencodable character)
            kind = None
        if kind == "file":
            _add(result, seen, absolute, given)
        elif kind == "folder":
            result.folders.append(absolute)
            for found in _walk(absolute, config):
                relative = found.relative_to(absolute).as_posix()
                _add(result, seen, found, (root / relative).as_posix() if given not in (".", "./") else relative)
        else:
            result.missing.append(given)
    return result


def _add(result: ScanResult, seen: set[Path], path: Path, display: str) -> None:
    if path not in seen:
        seen.add(path)
        result.files.append(FoundFile(path, display))


def _walk(root: Path, config: IngestConfig) -> list[Path]:
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if _keep(Path(directory, d), root, config))
        found.extend(Path(directory, f) for f in sorted(files) if _keep(Path(directory, f), root, config))
    return found


def _keep(path: Path, root: Path, config: IngestConfig) -> bool:
    if not config.include_hidden and path.name.startswith("."):
        return False
    relative = path.relative_to(root).as_posix()
    return not any(fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(path.name, pattern) for pattern in config.exclude)
