"""A run is a folder: the exact configs, the dataset fingerprint, the code version, per-query rows, a summary.

    <out>/<UTC timestamp>-<kind>/
        run.json          kind, dataset name + fingerprint, code version, started/finished, config names
        configs/<name>.json   each config exactly as used
        per_query.jsonl   one row per (config, query), keyed "query_id": metrics and what was retrieved
        summary.json      mean metrics per config

Every kind of run (retrieval, answers, meta) keys its rows by `query_id`, so the readers (`rag eval report`,
`rag eval compare`, the UI's evaluation page) match queries the same way. Runs recorded before this key was
shared wrote answer and meta rows under `id`; `read_rows` reads those too.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.version import __version__

QUERY_KEY = "query_id"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # rag/, inside the checkout whose commit is recorded
LEGACY_QUERY_KEY = "id"  # answer and meta runs recorded before QUERY_KEY was shared


def code_version() -> dict[str, str]:
    version = {"package": __version__}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            version["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=5)
            version["git_dirty"] = str(bool(dirty.stdout.strip())).lower()
    except (OSError, subprocess.SubprocessError):
        pass
    return version


class RunWriter:
    def __init__(self, out: Path, kind: str, meta: dict[str, Any]) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.folder = out / f"{stamp}-{kind}"
        suffix = 1
        while self.folder.exists():
            suffix += 1
            self.folder = out / f"{stamp}-{kind}-{suffix}"
        (self.folder / "configs").mkdir(parents=True)
        self.meta = {"kind": kind, "started": stamp, "code": code_version(), **meta}
        self._rows = (self.folder / "per_query.jsonl").open("w", encoding="utf-8")

    def write_config(self, name: str, config: dict[str, Any]) -> None:
        (self.folder / "configs" / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")

    def write_row(self, query_id: str, row: dict[str, Any]) -> None:
        """One per-query row; `query_id` is what the readers match queries by."""
        self._rows.write(json.dumps({QUERY_KEY: str(query_id), **row}) + "\n")

    def finish(self, summary: dict[str, Any]) -> Path:
        self._rows.close()
        self.meta["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (self.folder / "run.json").write_text(json.dumps(self.meta, indent=2) + "\n")
        (self.folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return self.folder


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a per_query.jsonl, each with its `query_id` (read from `id` in older runs).

    A row without either key is an error, not a silent "None" query that would merge every row into one.
    """
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagError(f"{path} line {number} is not JSON: {exc.msg}", "the run may have been interrupted; re-run it") from exc
        if not isinstance(row, dict):
            raise RagError(f"{path} line {number} is not a JSON object", "pass a folder written by `rag eval ... --out DIR`")
        query_id = row.get(QUERY_KEY, row.get(LEGACY_QUERY_KEY))
        if query_id is None:
            raise RagError(f"{path} line {number} has no {QUERY_KEY!r}", "every per-query row needs the id of its query; re-run the evaluation")
        row[QUERY_KEY] = str(query_id)
        rows.append(row)
    return rows
