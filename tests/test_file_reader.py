"""The worker process that reads files (rag.ingest.worker.FileReader): started early, reading ahead, stopped cleanly."""

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


class CrashingLoader:
    """A C parser that crashes: the process reading it dies of SIGSEGV."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


def test_a_crash_in_the_file_read_ahead_fails_only_that_file(tmp_path: Path) -> None:
    """`rag ingest` sends the first file to the reader before it opens the vector store: its reader dies there,
    and the run reports it when it collects the file, then reads the next one in a new reader."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.crash").write_text("anything")
    (folder / "b.md").write_text("# Ordinary\n\nThe ferry to the island leaves at noon.\n")
    loaders = json.dumps({"crash": {"kind": "tests.test_file_reader:CrashingLoader", "extensions": [".crash"]}})
    done = subprocess.run([sys.executable, "-m", "rag", "ingest", str(folder), "--index", str(tmp_path / "index"), "--json", "--set", f"ingest.loaders={loaders}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr
    assert [Path(f["path"]).name for f in report["failed"]] == ["a.crash"]
    assert report["failed"][0]["reason"].startswith("the reader process died")
    assert (report["new"], report["chunks_added"]) == (1, 1)
