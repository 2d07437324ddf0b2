"""End-to-end: the real `rag` CLI on the sample corpus, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.helpers import run_rag

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a copy of data/ so paths look like the README's (`data/handbook.pdf`)."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(DATA, root / "data")
    return root


def test_ingest_reingest_sources_remove(workdir: Path) -> None:
    first = run_rag("ingest", "data/", "--index", ".rag/demo", "--json", cwd=workdir)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    files = sorted(p for p in (workdir / "data").rglob("*") if p.is_file())
    assert report["new"] == len(files) and report["failed"] == [] and report["failed_count"] == 0
    assert report["texts_embedded"] == report["chunks_added"] > 0
    assert report["seconds"] > 0

    human = run_rag("ingest", "data/", "--index", ".rag/demo", cwd=workdir)
    assert human.returncode == 0
    assert f"0 new, 0 changed, {len(files)} unchanged" in human.stdout

    listed = json.loads(run_rag("sources", "--index", ".rag/demo", "--json", cwd=workdir).stdout)
    assert sorted(row["path"] for row in listed) == sorted(p.relative_to(workdir).as_posix() for p in files)
    handbook = next(row for row in listed if row["path"] == "data/handbook.pdf")
    assert handbook["type"] == "pdf" and handbook["pages"] >= 4 and handbook["chunks"] > 0
    assert sum(row["chunks"] for row in listed) == report["chunks_added"]

    removed = run_rag("remove", "data/handbook.pdf", "--index", ".rag/demo", "--json", cwd=workdir)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["chunks_removed"] == handbook["chunks"]
    after = json.loads(run_rag("sources", "--index", ".rag/demo", "--json", cwd=workdir).stdout)
    assert "data/handbook.pdf" not in {row["path"] for row in after}

    table = run_rag("sources", "--index", ".rag/demo", cwd=workdir)
    assert "data/travel_policy.pdf" in table.stdout and f"{len(files) - 1} sources" in table.stdout


def test_failed_file_gives_exit_code_1_and_keeps_the_rest(workdir: Path) -> None:
    folder = workdir / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThis file is fine.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage that is not a PDF body")
    result = run_rag("ingest", "mixed", "--index", ".rag/mixed", "--json", cwd=workdir)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["new"] == 1
    assert [f["path"] for f in report["failed"]] == ["mixed/broken.pdf"]
    assert "PDF" in report["failed"][0]["reason"]


def test_sources_on_missing_index_is_one_clear_error(workdir: Path) -> None:
    result = run_rag("sources", "--index", "no/such/index", cwd=workdir)
    assert result.returncode == 3
    assert "no index at no/such/index" in result.stderr
    assert "rag ingest" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_a_config_error(workdir: Path) -> None:
    result = run_rag("ingest", "data/", "--index", ".rag/x", "--set", "chunking.size=lots", cwd=workdir)
    assert result.returncode == 2
    assert "chunking.size" in result.stderr and "Traceback" not in result.stderr


def test_config_shows_effective_values_with_overrides(workdir: Path) -> None:
    (workdir / "rag.yaml").write_text("chunking:\n  size: 200\nbm25:\n  k1: 1.5\n")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "rag", "config", "--json", "--set", "bm25.k1=0.9"],
            cwd=workdir, capture_output=True, text=True, timeout=60,
            env={**__import__("os").environ, "RAG_CHUNKING__OVERLAP": "40"},
        )
    finally:
        (workdir / "rag.yaml").unlink()
    data = json.loads(result.stdout)
    assert data["chunking"]["size"] == 200  # from ./rag.yaml
    assert data["chunking"]["overlap"] == 40  # env beats the file
    assert data["bm25"]["k1"] == 0.9  # --set beats everything


def test_help_teaches_the_commands(workdir: Path) -> None:
    result = run_rag("--help", cwd=workdir)
    assert result.returncode == 0
    for command in ("ingest", "sources", "remove", "config"):
        assert command in result.stdout
    assert "--set" in run_rag("ingest", "--help", cwd=workdir).stdout
