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

from rag.config import RagConfig, load_config
from rag.errors import LoadError
from rag.index.store import Index
from rag.ingest.detect import detect_type
from rag.ingest.loaders import loader_factory
from rag.ingest import pipeline
from rag.ingest.pipeline import Ingestor
from rag.ingest.worker import PRELOAD, FileReader, ReaderChild, ReadTask
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


# --- a child started before the configuration is known (`rag ingest` starts one first thing) ------------------

def _marked_config(*overrides: str) -> RagConfig:
    loaders = json.dumps({"marked": {"kind": "tests.test_file_reader:MarkingLoader", "extensions": [".marked"]}})
    return load_config(None, [f"ingest.loaders={loaders}", *overrides])


def _no_new_child(*args: object, **kwargs: object) -> ReaderChild:
    raise AssertionError("a second reader's child was spawned")


def test_a_prestarted_child_is_adopted_and_reads_every_file_of_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.marked").write_text(f"The text of {name}.")
    child = ReaderChild.spawn()
    monkeypatch.setattr(ReaderChild, "spawn", _no_new_child)  # the run uses the one it was given
    with child, Index.open(tmp_path / "index", _marked_config(), writable=True) as index:
        report = Ingestor(index, reader_child=child).ingest([str(folder)])
        assert report.new == 2 and not report.failed
        assert {int((folder / f"{name}.read").read_text()) for name in ("a", "b")} == {child.process.pid}
        assert child.process.exitcode == 0  # the reader told it to stop once the run was done: it exited itself


def test_an_ingestor_given_no_child_starts_a_preloading_one_before_it_scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Library callers (rag.add, rag serve, the UI) get what `rag ingest` gets: the child boots and imports while
    the run scans and plans, and reads the files; a run that fails before reading leaves no child behind."""
    (tmp_path / "note.marked").write_text("Read by the early child.")
    events: list[object] = []
    children: list[ReaderChild] = []

    def spawn(preload: tuple[str, ...] = PRELOAD) -> ReaderChild:
        events.append(("spawn", preload))
        children.append(SPAWN(preload))
        return children[-1]

    def scan(*args: object, **kwargs: object) -> object:
        events.append("scan")
        return SCAN(*args, **kwargs)

    monkeypatch.setattr(ReaderChild, "spawn", spawn)
    monkeypatch.setattr(pipeline, "scan", scan)
    with Index.open(tmp_path / "index", _marked_config(), writable=True) as index:
        assert Ingestor(index).ingest([str(tmp_path / "note.marked")]).new == 1
        assert events == [("spawn", PRELOAD), "scan"]
        assert int((tmp_path / "note.read").read_text()) == children[0].process.pid
        monkeypatch.setattr(pipeline, "scan", _failing_scan)
        with pytest.raises(OSError, match="scan failed"):
            Ingestor(index).ingest([str(tmp_path / "note.marked")])
        assert len(children) == 2 and children[1].process.exitcode == -signal.SIGKILL


SPAWN = ReaderChild.spawn
SCAN = pipeline.scan


def _failing_scan(*args: object, **kwargs: object) -> object:
    raise OSError("scan failed")


def test_an_unused_prestarted_child_is_killed_when_the_run_reads_nothing(tmp_path: Path) -> None:
    (tmp_path / "note.marked").write_text("Nothing changes here.")
    config = _marked_config()
    with Index.open(tmp_path / "index", config, writable=True) as index:
        Ingestor(index).ingest([str(tmp_path / "note.marked")])
    with ReaderChild.spawn() as child, Index.open(tmp_path / "index", config, writable=True) as index:
        report = Ingestor(index, reader_child=child).ingest([str(tmp_path / "note.marked")])
        assert report.unchanged == 1
        assert not child.process.is_alive() and child.process.exitcode == -signal.SIGKILL  # killed, not awaited


def test_a_prestarted_child_is_killed_at_once_when_files_are_read_in_this_process(tmp_path: Path) -> None:
    (tmp_path / "note.marked").write_text("Read here.")
    with ReaderChild.spawn() as child, Index.open(tmp_path / "index", _marked_config("ingest.limits.isolate=false"), writable=True) as index:
        ingestor = Ingestor(index, reader_child=child)
        with FileReader(index.config.ingest, child):
            assert not child.process.is_alive()
        ingestor.ingest([str(tmp_path / "note.marked")])
    assert int((tmp_path / "note.read").read_text()) == os.getpid()


class BallooningLoader:
    """A parser that asks for far more memory than any limit (untouched pages: only the address-space cap sees it)."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        block = bytearray(4 * 1024 * 1024 * 1024)
        return LoadedSource("balloon", [Document(doc_id, f"allocated {len(block)} bytes")])


def test_the_memory_cap_holds_in_a_child_started_before_the_config_was_known(tmp_path: Path) -> None:
    loaders = json.dumps({"balloon": {"kind": "tests.test_file_reader:BallooningLoader", "extensions": [".balloon"]}})
    config = load_config(None, [f"ingest.loaders={loaders}", "ingest.limits.max_memory_mb=256"])
    tasks = []
    for name in ("big.balloon", "small.txt"):
        path = tmp_path / name
        path.write_text("The ferry leaves at noon.")
        file_type = detect_type(path, {".balloon": "balloon"})
        factory, section = loader_factory(file_type, config.ingest)
        tasks.append(ReadTask(path=str(path), doc_id=name, source=str(path), file_type=file_type, factory=factory, section=section,
                              ingest=config.ingest, chunking=config.chunking, fingerprint=config.indexing_fingerprint(file_type)))
    with ReaderChild.spawn() as child, FileReader(config.ingest, child) as reader:
        with pytest.raises(LoadError, match="max_memory_mb"):
            reader.read(tasks[0])
        assert [c.text for c in reader.read(tasks[1]).chunks] == ["The ferry leaves at noon."]  # only that file failed
        assert reader._process is child.process  # a MemoryError in a parser does not cost the child


def test_a_prestarted_child_imports_plugins_from_the_path_the_config_added_after_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "late_plugin_loader.py").write_text(
        "from rag.types import Document, LoadedSource\n"
        "class Loader:\n"
        "    def __init__(self, section, ingest): pass\n"
        "    def load(self, path, doc_id): return LoadedSource('late', [Document(doc_id, 'from a late plug-in')])\n"
    )
    (tmp_path / "note.late").write_text("anything")
    with ReaderChild.spawn() as child:
        monkeypatch.syspath_prepend(str(tmp_path))  # after the child started: only its first message can tell it
        config = load_config(None, ['ingest.loaders={"late": {"kind": "late_plugin_loader:Loader", "extensions": [".late"]}}'])
        factory, section = loader_factory("late", config.ingest)
        task = ReadTask(path=str(tmp_path / "note.late"), doc_id="note.late", source="note.late", file_type="late", factory=factory,
                        section=section, ingest=config.ingest, chunking=config.chunking, fingerprint=config.indexing_fingerprint("late"))
        with FileReader(config.ingest, child) as reader:
            assert [c.text for c in reader.read(task).chunks] == ["from a late plug-in"]


class ModulesLoader:
    """A text 'parser' that writes beside the file which process read it and whether that process loaded the CLI."""

    def __init__(self, section: object, ingest: object) -> None:
        pass

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        seen = {"pid": os.getpid(), "typer": "typer" in sys.modules, "cli": "rag.cli.main" in sys.modules}
        path.with_suffix(".read").write_text(json.dumps(seen))
        return LoadedSource("watched", [Document(doc_id, path.read_text())])


def test_the_reader_child_of_the_rag_command_does_not_import_the_cli(tmp_path: Path) -> None:
    """multiprocessing's spawn re-runs the parent's main script in the child: the `rag` console script imports only
    its small entry module, so the child reads its first file without typer or the CLI loaded."""
    script = Path(sys.executable).parent / "rag"
    if not script.is_file():
        pytest.skip(f"no `rag` console script beside {sys.executable}: install the package (pip install -e .)")
    (tmp_path / "note.watched").write_text("Which modules did the reader load?")
    loaders = json.dumps({"watched": {"kind": "tests.test_file_reader:ModulesLoader", "extensions": [".watched"]}})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [str(script), "ingest", str(tmp_path / "note.watched"), "--index", str(tmp_path / "index"), "--set", f"ingest.loaders={loaders}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as run:
        _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    seen = json.loads((tmp_path / "note.read").read_text())
    assert seen["pid"] != run.pid  # read in the reader's child
    assert not seen["typer"] and not seen["cli"], f"{script} makes the child import the CLI: reinstall the package if the script predates rag.cli.entry"


@pytest.mark.parametrize("overrides", [[], ["--set", "ingest.limits.isolate=false"]])
def test_rag_ingest_reading_nothing_leaves_no_process_and_no_leaked_semaphore(tmp_path: Path, overrides: list[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.md").write_text("# Note\n\nThe ferry to the island leaves at noon.\n")
    command = [sys.executable, "-m", "rag", "ingest", str(folder), "--index", str(tmp_path / "index"), "--json", *overrides]
    runs = [subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300, check=False) for _ in range(2)]
    assert [json.loads(done.stdout)["new" if n == 0 else "unchanged"] for n, done in enumerate(runs)] == [1, 1], runs[1].stderr
    for done in runs:
        assert done.returncode == 0 and "leaked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
