"""Find the files under the paths a user gave, honouring hidden-file and exclude rules."""

from __future__ import annotations

import fnmatch
import os
import stat
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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (display path, reason): not files to read


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
            for found, reason in _walk(absolute, config):
                relative = found.relative_to(absolute).as_posix()
                display = (root / relative).as_posix() if given not in (".", "./") else relative
                if reason:
                    result.skipped.append((display, reason))
                else:
                    _add(result, seen, found, display)
        elif os.path.lexists(absolute):
            result.skipped.append((given, _not_regular(absolute)))
        else:
            result.missing.append(given)
    return result


def _add(result: ScanResult, seen: set[Path], path: Path, display: str) -> None:
    if path not in seen:
        seen.add(path)
        result.files.append(FoundFile(path, display))


def _walk(root: Path, config: IngestConfig) -> list[tuple[Path, str]]:
    """Files to read (reason "") and entries left out with a reason: links to folders (never followed, so a
    link to a parent cannot loop), FIFOs, sockets and devices (reading one could block forever)."""
    found: list[tuple[Path, str]] = []
    for directory, subdirs, files in os.walk(root):
        kept = sorted(d for d in subdirs if _keep(Path(directory, d), root, config))
        subdirs[:] = [d for d in kept if not Path(directory, d).is_symlink()]
        found.extend((Path(directory, d), "a link to a folder: not followed (ingest its target itself)") for d in kept if d not in subdirs)
        for name in sorted(files):
            path = Path(directory, name)
            if _keep(path, root, config):
                found.append((path, "" if path.is_file() else _not_regular(path)))
    return found


def _not_regular(path: Path) -> str:
    """Why a path that exists is not read: it is no regular file (or a link to nowhere)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken link or an entry that cannot be examined"
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"{kind}: not a regular file, not read"


def _keep(path: Path, root: Path, config: IngestConfig) -> bool:
    if not config.include_hidden and path.name.startswith("."):
        return False
    relative = path.relative_to(root).as_posix()
    return not any(fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(path.name, pattern) for pattern in config.exclude)
