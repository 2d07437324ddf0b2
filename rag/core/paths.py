"""Path globs as users write them in filters (`--source`) and in the `ingest.groups` mapping."""

from __future__ import annotations


def path_matches(path: str, pattern: str) -> bool:
    """Path glob: `*` stays within a folder, `**` crosses folders, a bare folder matches everything under it."""
    from wcmatch import glob

    if glob.globmatch(path, pattern, flags=glob.GLOBSTAR):
        return True
    base = pattern.rstrip("/").removesuffix("/**").rstrip("/")
    return bool(base) and not any(ch in base for ch in "*?[") and path.startswith(base + "/")
