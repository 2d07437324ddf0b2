"""The worker process that reads files (rag.ingest.worker.FileReader): started early, stopped cleanly; under `rag ingest`
a fork (cheap), whose crash still fails only its file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.detect import detect_type
from rag.ingest.loaders import loader_factory
from rag.ingest.worker import FileReader, ReadTask
from rag.types import Document, LoadedSource

REPO = Path(__file__).resolve().parents[1]


def test_a_reader_started_early_reads_in_its_child_which_exits_cleanly_when_closed(tmp_path: Path) -> None:
    config = load_config()
    path = tmp_path / "note.txt"
    path.write_text("The release train leaves every second Tuesday.\n")
    file_type = detect_type(path, {})
    factory, section = loader_factory(file_type, config.ingest)
    task = ReadTask(path=str(path), doc_id="note.txt", source=str(path), file_type=file_type, factory=factory, section=section,
                    ingest=config.ingest, chunking=config.chunking, fingerprint=config.indexing_fingerprint(file_type))
    with FileReader(config.ingest) as reader:
        reader.start()
        child = reader._process
        assert child is not None and child.is_alive()
        result = reader.read(task)
        assert reader._process is child  # the started child read the file: no second one
    assert [c.text for c in result.chunks] == ["The release train leaves every second Tuesday."]
    assert child.exitcode == 0  # told to stop, it exited on its own (not killed)


class MarkingLoader:
    """A text 'parser' that leaves a mark beside the file when it reads it."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        path.with_suffix(".read").write_text(str(os.getpid()))
        return LoadedSource("marked", [Document(doc_id, path.read_text())])


def test_a_file_read_ahead_is_read_while_this_process_works_and_collected_by_its_read(tmp_path: Path) -> None:
    config = load_config(None, ['ingest.loaders={"marked": {"kind": "tests.test_file_reader:MarkingLoader", "extensions": [".marked"]}}'])
    tasks = []
    for name in ("first.marked", "second.marked"):
        path = tmp_path / name
        path.write_text(f"The text of {name}.")
        factory, section = loader_factory("marked", config.ingest)
        tasks.append(ReadTask(path=str(path), doc_id=name, source=str(path), file_type="marked", factory=factory, section=section,
                              ingest=config.ingest, chunking=config.chunking, fingerprint=config.indexing_fingerprint("marked")))
    with FileReader(config.ingest) as reader:
        reader.read_ahead(tasks[0])
        mark = tmp_path / "first.read"
        deadline = time.monotonic() + 60
        while not mark.exists() and time.monotonic() < deadline:  # the child reads it before anyone asks
            time.sleep(0.01)
        assert mark.exists() and int(mark.read_text()) == reader._process.pid  # type: ignore[union-attr]
        with pytest.raises(RuntimeError, match="read ahead"):  # another file's read cannot take its answer
            reader.read(tasks[1])
        reader.read_ahead(tasks[1])  # one file ahead at a time: this does nothing
        assert [c.text for c in reader.read(tasks[0]).chunks] == ["The text of first.marked."]
        assert [c.text for c in reader.read(tasks[1]).chunks] == ["The text of second.marked."]


# --- plug-in loaders for the CLI test below (module level: the child imports them by name) -----------------
class WhereLoader:
    """A 'parser' that says whether the process reading it holds the CLI's modules: a fork of `rag ingest` does,
    a freshly spawned child of `python -m rag` does not (it imports only rag.ingest.worker and what it needs)."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        return LoadedSource("where", [Document(doc_id, "forked" if "rag.cli.main" in sys.modules else "spawned")])


class CrashingLoader:
    """A C parser that crashes: the process reading it dies of SIGSEGV."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


def test_start_method_forks_only_a_process_that_runs_one_thread() -> None:
    """A fork copies only the calling thread: with another thread running (here a Python one; numpy's BLAS pool
    counts too) the reader is spawned instead."""
    probe = "from rag.ingest.worker import start_method; print(start_method(), end=' ')"
    alone = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    busy = subprocess.run([sys.executable, "-c", f"import threading, time; threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); {probe}"],
                          capture_output=True, text=True, check=True, cwd=REPO)
    assert (alone.stdout, busy.stdout) == (("fork " if sys.platform == "linux" else "spawn "), "spawn ")


def test_rag_ingest_reads_in_a_forked_child_and_a_crash_there_fails_only_that_file(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.where").write_text("anything")  # read first, by the child `rag ingest` started before any thread
    (folder / "b.crash").write_text("anything")
    (folder / "c.md").write_text("# Ordinary\n\nThe ferry to the island leaves at noon.\n")
    loaders = {"where": {"kind": "tests.test_file_reader:WhereLoader", "extensions": [".where"]},
               "crash": {"kind": "tests.test_file_reader:CrashingLoader", "extensions": [".crash"]}}
    index_dir = tmp_path / "index"
    done = subprocess.run([sys.executable, "-m", "rag", "ingest", str(folder), "--index", str(index_dir), "--json", "--set", f"ingest.loaders={json.dumps(loaders)}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr
    assert [Path(f["path"]).name for f in report["failed"]] == ["b.crash"]
    assert report["failed"][0]["reason"].startswith("the reader process died")
    assert report["new"] == 2
    with Index.open(index_dir, load_config(None, [f"ingest.loaders={json.dumps(loaders)}"])) as index:
        texts = {Path(c.source).name: c.text for c in index.manifest.chunks_by_id(sorted(index.manifest.all_chunk_ids()))}
    assert texts == {"a.where": "forked", "c.md": "# Ordinary\n\nThe ferry to the island leaves at noon."}
