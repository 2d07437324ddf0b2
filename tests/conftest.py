"""Shared fixtures. Downloads are forbidden: an accidental hub fetch fails fast instead of hanging."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SHARED = REPO.parent / "shared"
SCIFACT = SHARED / "datasets" / "scifact"


@pytest.fixture
def sample_corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus that a test may edit."""
    target = tmp_path / "corpus"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def config_factory():
    """Build a RagConfig with dotted overrides, the way --set does."""
    from rag.config import load_config

    def build(*overrides: str):
        return load_config(None, list(overrides))

    return build


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a copy of data/ and its index at .rag/demo, built once with the real CLI (sources read `data/...`)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(DATA, root / "data")
    done = subprocess.run([sys.executable, "-m", "rag", "ingest", "data/", "--index", ".rag/demo"], cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return root
