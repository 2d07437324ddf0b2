"""Every command in README.md and docs/ runs as written, or its block says visibly why not here.

A fenced `bash` or `python` block runs from a folder laid out like the repository root (data/, eval/gold,
eval/runs, the session's sample index at .rag/demo), with this environment's `rag` first on PATH, as after
`source .venv/bin/activate`; it must exit 0. A block whose first line is a comment starting with
`# needs` (a server, an endpoint, the package registry) or `# long-running` (with how long) is not run here.
Standard input is empty, so an interactive command (`rag chat`) ends at once. Blocks of a page run in
order in one folder, so a page may build on its own earlier blocks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

FENCE = re.compile(r"^```(bash|python)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOT_RUN_HERE = ("# needs", "# long-running")
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


def runnable(page: Path) -> list[tuple[str, str]]:
    return [(kind, code) for kind, code in blocks(page) if not code.lstrip().startswith(NOT_RUN_HERE)]


def test_the_pages_have_commands_and_the_quick_start_activates_the_environment() -> None:
    assert sum(len(blocks(p)) for p in PAGES) >= 20 and sum(len(runnable(p)) for p in PAGES) >= 15
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "source .venv/bin/activate" in quick and "-c constraints.txt" in quick


@pytest.fixture(scope="module")
def layout(demo_workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a page's blocks may read: the sample index and the repository's eval data (copied once)."""
    root = tmp_path_factory.mktemp("docs-layout")
    shutil.copytree(REPO / "eval" / "gold", root / "eval" / "gold")
    shutil.copytree(REPO / "eval" / "runs", root / "eval" / "runs")
    return root


def workdir(layout: Path, demo_workdir: Path, target: Path) -> Path:
    """A fresh repository-like folder: data/ links to the session's copy (so the index's paths match and
    re-ingesting it is "unchanged"), the index is a private copy a page may change."""
    shutil.copytree(layout, target)
    (target / "data").symlink_to(demo_workdir / "data", target_is_directory=True)
    shutil.copytree(demo_workdir / ".rag" / "demo", target / ".rag" / "demo")
    return target


@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=lambda p: str(p.relative_to(REPO)))
def test_every_runnable_block_runs_as_written(page: Path, layout: Path, demo_workdir: Path, tmp_path: Path) -> None:
    folder = workdir(layout, demo_workdir, tmp_path / "repo")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "120"}
    env.pop("RAG_CONFIG", None)
    for number, (kind, code) in enumerate(runnable(page), start=1):
        command = ["bash", "-e", "-o", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{page.name} block {number} ({kind}) exited {done.returncode}:\n{code}\n--- stderr:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{page.name} block {number}:\n{done.stderr[-3000:]}"


REFUSAL_EXAMPLE = re.compile(r'^rag ask "([^"]+)" --index \.rag/demo\s+# not in the documents', re.MULTILINE)


def test_the_pages_examples_of_a_refusal_are_refused(demo_workdir: Path) -> None:
    """A tour line that promises "not in the documents: it says so" must show the refusal, not a near-miss quote."""
    questions = sorted({q for page in PAGES for q in REFUSAL_EXAMPLE.findall(page.read_text(encoding="utf-8"))})
    assert questions
    for question in questions:
        done = subprocess.run([str(Path(sys.executable).parent / "rag"), "ask", question, "--index", ".rag/demo"],
                              cwd=demo_workdir, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "do not contain an answer" in done.stdout, f"{question!r} was answered:\n{done.stdout}"
