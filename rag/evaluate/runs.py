"""A run is a folder: the exact configs, the dataset fingerprint, the code version, per-query rows, a summary.

    <out>/<UTC timestamp>-<kind>/
        run.json          kind, dataset name + fingerprint, code version, started/finished, config names
        configs/<name>.json   each config exactly as used
        per_query.jsonl   one row per (config, query): metrics and what was retrieved
        summary.json      mean metrics per config
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import rag


def code_version() -> dict[str, str]:
    version = {"package": rag.__version__}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(rag.__file__).parent, capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            version["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain"], cwd=Path(rag.__file__).parent, capture_output=True, text=True, timeout=5)
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

    def write_row(self, row: dict[str, Any]) -> None:
        self._rows.write(json.dumps(row) + "\n")

    def finish(self, summary: dict[str, Any]) -> Path:
        self._rows.close()
        self.meta["finished"] = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (self.folder / "run.json").write_text(json.dumps(self.meta, indent=2) + "\n")
        (self.folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return self.folder
