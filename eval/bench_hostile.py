"""Time and peak memory of `rag ingest` over the hostile fuzz folder (issue 18; docs/reliability.md).

Makes the folder with tests/hostile_files.py in a temporary directory, runs `rag ingest FOLDER --json` in a
subprocess and samples the resident memory of its whole process tree (the ingest and its reader process) every
20 ms. Prints the wall time, the peak, and each file's outcome.

    cpu-exclusive .venv/bin/python eval/bench_hostile.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.hostile_files import make_hostile_folder, run_measured  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        folder, index = Path(work) / "hostile", Path(work) / "index"
        make_hostile_folder(folder)
        rag = str(Path(sys.executable).parent / "rag")
        result, peak, seconds = run_measured([rag, "ingest", str(folder), "--index", str(index), "--json"], dict(os.environ), REPO)
    report = json.loads(result.stdout)
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; exit code {result.returncode}")
    print(f"wall time {seconds:.1f} s, peak RSS of the process tree {peak / 2**20:.0f} MB")
    print(f"ingested {report['new']} files, failed {report['failed_count']}, skipped {report['skipped_count']}")
    for kind in ("failed", "skipped", "notes"):
        for problem in report[kind]:
            print(f"  {kind:7} {Path(problem['path']).name!r}: {problem['reason']}")


if __name__ == "__main__":
    main()
