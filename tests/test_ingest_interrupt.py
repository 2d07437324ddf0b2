"""`rag ingest` given a path that does not exist, and stopped with Ctrl-C: it says what happened and loses nothing.

The Ctrl-C test runs the real CLI in a subprocess whose embeddings come from the fake OpenAI-compatible server;
the fake holds one embedding request open, so the test knows the ingest is mid-way (some files committed, one
being embedded) when it sends SIGINT: no sleeps, no timing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

from rag.config import load_config
from rag.index.manifest import Manifest
from rag.index.store import MANIFEST_FILE, Index
from tests.fake_openai import FakeOpenAI
from tests.helpers import assert_index_consistent, run_rag

FILES = 6
HOLD_AT = 3  # the third embedding request is held: files 1 and 2 are committed, file 3 is being embedded


def test_ingesting_a_missing_path_is_a_usage_error_that_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("# A\n\nSome text.\n")
    done = run_rag("ingest", "docs", "dcos/typo", "--index", ".rag/new", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "no such file or folder: dcos/typo" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".rag").exists()  # no empty index left behind, not even the folder


def _corpus(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(FILES):
        path = folder / f"note_{i}.md"
        path.write_text(f"# Note {i}\n\nThe harbour crane number {i} was serviced in week {i + 10}.\n", encoding="utf-8")
        paths.append(path)
    return paths


def _ctrl_c_enabled() -> None:
    """Ctrl-C as in a terminal: a shell starts background jobs (a CI step, `cmd &`) with SIGINT ignored, and
    children inherit that, so the CLI under test would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_mid_ingest_says_what_was_committed_and_the_next_run_resumes(tmp_path: Path) -> None:
    _corpus(tmp_path / "notes")
    held = threading.Event()
    release = threading.Event()
    embedding_requests = 0

    def hold_one(path: str, body: dict) -> None:
        nonlocal embedding_requests
        if path != "/v1/embeddings":
            return
        embedding_requests += 1
        if embedding_requests == HOLD_AT:
            held.set()
            release.wait(timeout=120)

    with FakeOpenAI() as fake:
        fake.before_reply = hold_one
        (tmp_path / "rag.yaml").write_text(
            "embedding:\n  provider: openai\n  base_url: " + fake.base_url + "\n  api_key: test-key\n  model: fake-embed\n"
            "  max_retries: 0\ningest:\n  write_batch_chunks: 1\n",  # one file per batch: each file is committed on its own
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "rag", "ingest", "notes", "--index", ".rag/notes"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_ctrl_c_enabled,
        )
        try:
            assert held.wait(timeout=300), "the ingest never reached its third embedding request"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
        finally:
            release.set()
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, stderr
        manifest = Manifest(tmp_path / ".rag/notes" / MANIFEST_FILE)
        try:
            committed = manifest.sources()
        finally:
            manifest.close()
        assert len(committed) == HOLD_AT - 1
        chunks = sum(record.chunks for record in committed)
        assert f"Interrupted. {len(committed)} files ({chunks} chunks) were committed to .rag/notes" in " ".join(stderr.split())
        assert "Run the same command again to resume" in stderr and "Traceback" not in stderr

        fake.before_reply = None
        resumed = run_rag("ingest", "notes", "--index", ".rag/notes", "--json", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        report = json.loads(resumed.stdout)
        assert (report["unchanged"], report["new"]) == (len(committed), FILES - len(committed))
        config = load_config(tmp_path / "rag.yaml")
        with Index.open(tmp_path / ".rag/notes", config) as index:
            assert len(assert_index_consistent(index)) == chunks + report["chunks_added"]
            assert len(index.manifest.sources()) == FILES
