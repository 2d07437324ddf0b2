"""A writer killed with SIGKILL mid-ingest leaves an index that the next run detects and repairs."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from tests.helpers import assert_index_consistent

pytestmark = pytest.mark.slow

KILL_AT_SECOND_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from rag.index.manifest import Manifest
    original = Manifest.commit_source
    calls = {"n": 0}
    def commit_then_die(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # vectors of this source are written, the manifest commit is not
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    Manifest.commit_source = commit_then_die
    from rag.cli.main import run
    sys.argv = ["rag", *sys.argv[1:]]
    run()
    """
)


def write_corpus(root: Path, files: int, version: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        paragraphs = [f"Document {i} version {version}, paragraph {p}: " + f"token{i}x{p} " * 40 for p in range(3)]
        (root / f"doc{i:02d}.txt").write_text("\n\n".join(paragraphs))


def ingest_in_process(index_dir: Path, corpus: Path, *overrides: str):
    with Index.open(index_dir, load_config(None, ["chunking.size=64", *overrides]), writable=True) as index:
        report = Ingestor(index).ingest([str(corpus)])
        ids = assert_index_consistent(index)
        texts = [c.text for c in index.manifest.chunks_by_id(sorted(ids))]
    return report, ids, texts


def test_kill_between_vector_write_and_manifest_commit_is_repaired(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 4, "one")
    ingest_in_process(index_dir, corpus)
    write_corpus(corpus, 4, "two")  # every file changes: old chunks are deleted, new ones written

    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_SECOND_COMMIT, "ingest", str(corpus), "--index", str(index_dir),
         "--set", "chunking.size=64", "--set", "ingest.write_batch_chunks=1", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL

    with Index.open(index_dir, load_config(None, ["chunking.size=64"]), repair=False) as index:
        assert index.needs_repair()
        # The crash left vectors the manifest does not know and lacks vectors it does know.
        assert index.vectors.ids() != index.manifest.all_chunk_ids()

    report, ids, texts = ingest_in_process(index_dir, corpus)
    assert report.repaired is not None
    assert report.repaired["orphan_vectors_deleted"] > 0
    assert report.repaired["vectors_restored"] > 0
    assert report.new == 0 and report.changed + report.unchanged == 4
    assert all("version two" in t or "version" not in t for t in texts)
    assert not any("version one" in t for t in texts)


def test_cli_killed_at_a_random_moment_then_rerun(tmp_path: Path) -> None:
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    write_corpus(corpus, 30, "one")
    command = [sys.executable, "-m", "rag", "ingest", str(corpus), "--index", str(index_dir),
               "--set", "chunking.size=64", "--set", "ingest.write_batch_chunks=3", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = index_dir / "manifest.sqlite"
    deadline = time.time() + 240
    committed = 0
    while time.time() < deadline and process.poll() is None:
        if manifest.exists():
            try:
                with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=1) as db:
                    committed = db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed >= 5:
                break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    assert 5 <= committed < 30

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with Index.open(index_dir, load_config(None, ["chunking.size=64"])) as index:
        ids = assert_index_consistent(index)
        assert len(index.manifest.sources()) == 30
        per_doc = [c.doc_id for c in index.manifest.chunks_by_id(sorted(ids))]
        assert len(set(per_doc)) == 30
