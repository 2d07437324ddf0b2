"""`rag ingest` and `rag remove` end without the interpreter's teardown (rag.cli.main._exit): what they wrote and
printed must be all there, as after a normal exit, and their exit codes unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from rag.config import load_config
from rag.index.handles import VECTOR_HANDLES
from rag.index.store import Index
from tests.helpers import assert_index_consistent


def run_rag(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `rag` CLI in a subprocess whose stdout is block-buffered (a pipe, PYTHONUNBUFFERED unset), as when a
    script reads `rag ingest --json`: what the command printed must have been flushed before it exited."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "rag", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _ingest(folder: Path, index: Path) -> tuple[int, dict[str, object]]:
    done = run_rag("ingest", str(folder), "--index", str(index), "--json", cwd=folder.parent)
    assert "leaked" not in done.stderr, done.stderr  # the reader's child released what it made (resource_tracker)
    return done.returncode, json.loads(done.stdout)


def _docs(tmp_path: Path, texts: dict[str, str]) -> Path:
    """A folder `docs` under tmp_path holding one file per name, with its text."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in texts.items():
        (folder / name).write_text(text)
    return folder


def _check_fresh_process_view(index: Path, new_text: str | None) -> None:
    """The index as a new process reads it: catalog, vectors and BM25 agree; a new chunk's vector is found."""
    VECTOR_HANDLES.close_all()  # this test process's handles from an earlier check would not see the new writes
    with Index.open(index, load_config()) as opened:
        ids = assert_index_consistent(opened)
        if new_text is not None:
            chunk = next(c for c in opened.manifest.chunks_by_id(sorted(ids)) if new_text in c.text)
            found, vectors = opened.vectors.get_vectors([chunk.chunk_id])
            assert found == [chunk.chunk_id]
            assert opened.vectors.query(np.asarray(vectors[0]), 1)[0][0] == chunk.chunk_id


def test_ingest_change_and_remove_are_complete_after_the_fast_exit(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for number, topic in enumerate(["vacation days", "expense limits", "laptop security"]):
        (folder / f"doc{number}.txt").write_text(f"Policy {number} is about {topic}.\n\nIt has a second paragraph.\n")
    (folder / "broken.pdf").write_bytes(b"not a pdf")
    index = tmp_path / "index"

    code, report = _ingest(folder, index)
    assert code == 1 and report["new"] == 3 and report["failed_count"] == 1  # a failed file: exit 1, as before
    _check_fresh_process_view(index, "laptop security")

    (folder / "broken.pdf").unlink()
    (folder / "doc1.txt").write_text("Policy 1 now covers zebra crossings.\n")
    code, report = _ingest(folder, index)
    assert code == 0 and report["changed"] == 1 and report["chunks_added"] >= 1
    _check_fresh_process_view(index, "zebra crossings")

    removed = run_rag("remove", str(folder / "doc2.txt"), "--index", str(index), "--json", cwd=tmp_path)
    assert removed.returncode == 0 and json.loads(removed.stdout)["removed"] == 1
    _check_fresh_process_view(index, None)
    with Index.open(index, load_config()) as opened:
        assert [s.path for s in opened.manifest.sources()] == [(folder / f"doc{n}.txt").as_posix() for n in (0, 1)]
    VECTOR_HANDLES.close_all()


def test_remove_of_an_unknown_path_keeps_exit_code_1(tmp_path: Path) -> None:
    folder = _docs(tmp_path, {"a.txt": "Alpha paragraph.\n", "b.txt": "Beta paragraph.\n"})
    index = tmp_path / "index"
    assert _ingest(folder, index)[0] == 0
    done = run_rag("remove", str(folder / "a.txt"), str(folder / "missing.txt"), "--index", str(index), "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["removed"] == 1
    _check_fresh_process_view(index, None)
    VECTOR_HANDLES.close_all()


def test_a_closed_handle_reopens_on_next_use(tmp_path: Path) -> None:
    folder = _docs(tmp_path, {"a.txt": "Alpha paragraph about gardens.\n"})
    index = tmp_path / "index"
    assert _ingest(folder, index)[0] == 0
    with Index.open(index, load_config()) as opened:
        before = opened.vectors.count()
    VECTOR_HANDLES.close_all()
    with Index.open(index, load_config()) as opened:
        assert opened.vectors.count() == before == 1
    VECTOR_HANDLES.close_all()


def test_a_profiled_ingest_keeps_the_normal_exit_so_the_profile_is_written(tmp_path: Path) -> None:
    import pstats

    folder = _docs(tmp_path, {"a.txt": "Alpha paragraph about gardens.\n"})
    profile = tmp_path / "ingest.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "rag", "ingest", str(folder), "--index", str(tmp_path / "index")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert pstats.Stats(str(profile)).total_calls > 0  # the fast exit would have skipped cProfile's write
