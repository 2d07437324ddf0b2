"""Hostile and oversized files (issue 18): each fails fast with a reason, the run stays bounded, finished files are kept.

The files are made at test time by tests/hostile_files.py. The CLI runs in a subprocess whose process tree's
resident memory is sampled; a file whose loader hangs or balloons is read by a plug-in loader below.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag.config import load_config
from rag.core.progress import Progress
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.retrieve.access import Access
from rag.retrieve.search import HybridSearcher
from rag.types import Document, LoadedSource
from tests.helpers import assert_index_consistent
from tests.hostile_files import ORDINARY_TEXT, make_hostile_folder, run_measured

REPO = Path(__file__).resolve().parents[1]
GB = 1024**3


# --- plug-in loaders that misbehave (module level: the worker process imports them by name) -------------
class HangingLoader:
    """An endless loop in a 'parser'."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        while True:
            time.sleep(0.05)


class BalloonLoader:
    """A 'parser' that keeps allocating."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        hoard = []
        for _ in range(64):  # up to 6.4 GB, touched so it is resident
            hoard.append(bytearray(b"x" * (100 * 1024 * 1024)))
        return LoadedSource("balloon", [Document(doc_id, "never")])


MISBEHAVING_LOADERS = {
    "hang": {"kind": "tests.test_hostile:HangingLoader", "extensions": [".hang"]},
    "balloon": {"kind": "tests.test_hostile:BalloonLoader", "extensions": [".balloon"]},
}


def _without_file_permissions() -> list[str]:
    """A prefix that takes root's power to read any file (so a mode-000 file is unreadable to the test too)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"] if setpriv else []


def _keep_writing(path: Path, stop: threading.Event) -> None:
    with path.open("a") as handle:
        while not stop.is_set():
            handle.write("more log lines about wombats\n")
            handle.flush()
            time.sleep(0.005)


def _search(index_dir: Path, query: str, dense: bool = True) -> list[str]:
    """Sources of the chunks found (by BM25 alone when `dense` is False); opening the index repairs it if needed."""
    config = load_config(None, [] if dense else ["retrieval.dense_top_k=0"])
    with Index.open(index_dir, config) as index:
        result = HybridSearcher(index, config.retrieval).search([query], access=Access.unrestricted())
        return [hit.chunk.source for hit in result.chunks[:5]]


def test_hostile_folder_fails_each_file_with_its_reason_within_bounds(tmp_path: Path) -> None:
    folder, index_dir = tmp_path / "hostile", tmp_path / "index"
    expected = make_hostile_folder(folder)
    secret = folder / "secret.md"
    secret.write_text("# Secret\n\nnobody may read this\n")
    secret.chmod(0)
    prefix = _without_file_permissions()
    if prefix or os.geteuid() != 0:
        expected["secret.md"] = "permission denied"
    growing = folder / "growing.log"
    growing.write_text("first line\n")
    expected["growing.log"] = "changed while it was read"
    stop = threading.Event()
    writer = threading.Thread(target=_keep_writing, args=(growing, stop), daemon=True)
    writer.start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [*prefix, str(Path(sys.executable).parent / "rag"), "ingest", str(folder), "--index", str(index_dir), "--json"]
    try:
        result, peak, seconds = run_measured(command, env, REPO, during=stop)
    finally:
        stop.set()
        writer.join()
        secret.chmod(0o600)

    assert result.returncode == 1, result.stderr  # some files failed; the run finished
    report = json.loads(result.stdout)
    reasons = {Path(p["path"]).name: p["reason"] for kind in ("failed", "skipped", "notes") for p in report[kind]}
    for name, fragment in expected.items():
        if fragment:
            assert fragment in reasons.get(name, ""), (name, reasons.get(name))
        else:
            assert name not in reasons or name == "broken.jsonl", (name, reasons[name])
    assert report["new"] == 5  # the four ordinary Markdown files and the good records of broken.jsonl
    assert "4 record(s) skipped" in reasons["broken.jsonl"]
    assert peak < 1 * GB, f"peak RSS of the ingest's process tree {peak / 2**20:.0f} MB"
    assert seconds < 60, f"the run took {seconds:.1f} s"

    hits = _search(index_dir, "quokkas Rottnest Island marsupials")
    assert {Path(h).name for h in hits} >= {"ordinary.md", "a file with spaces.md", "naïve 文档 שלום.md", "new\nline.md"}
    assert any(Path(h).name == "broken.jsonl" for h in _search(index_dir, "platypuses electroreception"))
    assert any(Path(h).name == "broken.jsonl" for h in _search(index_dir, "echidnas spiny anteaters", dense=False))


class _RemoveWhenReadingStarts(Progress):
    def __init__(self, victim: Path) -> None:
        self.victim = victim

    def phase(self, name: str, total: int | None) -> None:
        if name == "Reading files" and self.victim.exists():
            self.victim.unlink()  # after the scan and the check, before the load


def test_hanging_ballooning_and_vanishing_files_fail_and_the_next_file_proceeds(tmp_path: Path) -> None:
    folder, index_dir = tmp_path / "docs", tmp_path / "index"
    folder.mkdir()
    (folder / "a.hang").write_text("anything")
    (folder / "b.balloon").write_text("anything")
    (folder / "c.md").write_text(f"# Ordinary\n\n{ORDINARY_TEXT}\n")
    (folder / "d.md").write_text("# Vanishing\n\nremoved between scan and load\n")
    config = load_config(
        None,
        ["ingest.limits.timeout_s=3", "ingest.limits.max_memory_mb=300", f"ingest.loaders={json.dumps(MISBEHAVING_LOADERS)}"],
    )
    started = time.perf_counter()
    with Index.open(index_dir, config, writable=True) as index:
        report = Ingestor(index, _RemoveWhenReadingStarts(folder / "d.md")).ingest([str(folder)])
        assert_index_consistent(index)
    seconds = time.perf_counter() - started
    reasons = {Path(p.path).name: p.reason for p in report.failed}
    assert "ingest.limits.timeout_s=3" in reasons["a.hang"]
    assert "ingest.limits.max_memory_mb=300" in reasons["b.balloon"]
    assert "removed before it could be read" in reasons["d.md"]
    assert report.new == 1 and set(reasons) == {"a.hang", "b.balloon", "d.md"}
    assert seconds < 45
    assert [Path(h).name for h in _search(index_dir, "quokkas Rottnest")][:1] == ["c.md"]


def _committed_sources(index_dir: Path) -> int:
    manifest = index_dir / "manifest.sqlite"
    if not manifest.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM sources").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_a_stopped_run_keeps_the_files_it_finished_and_the_next_run_does_the_rest(tmp_path: Path, stop: signal.Signals) -> None:
    folder, index_dir = tmp_path / "docs", tmp_path / "index"
    folder.mkdir()
    (folder / "a.md").write_text(f"# Ordinary\n\n{ORDINARY_TEXT}\n")
    (folder / "b.hang").write_text("a file its loader never finishes")
    loaders = f"ingest.loaders={json.dumps({'hang': MISBEHAVING_LOADERS['hang']})}"
    command = [sys.executable, "-m", "rag", "ingest", str(folder), "--index", str(index_dir), "--set", loaders, "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and _committed_sources(index_dir) < 1:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    if stop == signal.SIGTERM:
        assert process.returncode == 130, stderr
        assert "Interrupted. 1 file (1 chunks) were committed" in " ".join(stderr.split())
    else:
        assert process.returncode == -signal.SIGKILL
    # a reader opening the index repairs an abandoned write: BM25 holds the committed file at once
    assert [Path(h).name for h in _search(index_dir, "quokkas Rottnest", dense=False)] == ["a.md"]
    with Index.open(index_dir, load_config(), repair=False) as index:
        assert not index.needs_repair()
        assert_index_consistent(index)

    rerun = subprocess.run([*command, "--set", "ingest.limits.timeout_s=1"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    report = json.loads(rerun.stdout)
    assert report["unchanged"] == 1 and report["new"] == 0
    assert [p["path"] for p in report["failed"]] == [str(folder / "b.hang")]
    assert "ingest.limits.timeout_s=1" in report["failed"][0]["reason"]
