"""Read and chunk one file at a time in a worker process, so a file that hangs or balloons cannot stop the run.

`FileReader.read(task)` sends a `ReadTask` to a persistent child process (spawned once per ingest: a fresh
interpreter, as no fork of a process running embedding threads is safe; about half a second) and waits. A
`ReaderChild` can be started before the ingest has even loaded its configuration (`rag ingest` does, first thing;
`Ingestor.ingest` starts one as it begins when its caller gave none):
it imports what every read needs (`PRELOAD`) while the parent loads its config and scans, and the `FileReader`
adopts it, sending it the limits and `sys.path` with its first message; unused, it is killed at once. The child is
stopped (SIGKILL) and replaced when the file overruns `ingest.limits.timeout_s`, when its resident memory passes
`ingest.limits.max_memory_mb` (polled here; the child also caps its own address space at that much above what it
had once its imports were done, so a sudden allocation fails there as a MemoryError), or when it dies (a crash in a C parser). Each
case becomes a `LoadError` naming the limit, and the next file gets a new child.

With `ingest.limits.isolate: false`, or for a plug-in loader that cannot be sent to another process (defined
inside a function), files are read in this process: the data limits still hold, time and memory do not.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rag.config import BM25Config, ChunkingConfig, IngestConfig, LoaderBase
from rag.errors import LoadError
from rag.ingest.detect import UnsupportedType
from rag.ingest.limits import check_chunks, check_text, over
from rag.types import Chunk, LoadedSource

__all__ = ["PRELOAD", "FileReader", "ReadResult", "ReadTask", "ReaderChild", "os_reason", "read_file"]

_POLL_S = 0.05  # how often the parent looks at the child's time and memory
_MB = 1024 * 1024
# what every read imports, loaded by a prestarted child before its first task (bm25s: the BM25 tokens it makes)
PRELOAD = ("rag.ingest.loaders", "rag.ingest.chunking", "rag.index.bm25", "bm25s", "tokenizers")


@dataclass(frozen=True, slots=True)
class _Setup:
    """A child's first message: what it takes from the ingest's configuration, known only once it is loaded."""

    sys_path: list[str]
    max_memory_mb: int


@dataclass(frozen=True, slots=True)
class ReadTask:
    """One file to read and chunk, with everything the child needs (it shares no state with the parent)."""

    path: str
    doc_id: str
    source: str  # the chunks' source key
    file_type: str
    factory: Any  # the loader factory (rag.ingest.loaders.LoaderFactory), sent by reference
    section: LoaderBase
    ingest: IngestConfig
    chunking: ChunkingConfig
    fingerprint: str
    bm25: BM25Config | None = None  # also tokenise the chunks for BM25 under these settings (`ReadResult.tokens`)


@dataclass(slots=True)
class ReadResult:
    loaded: LoadedSource
    chunks: list[Chunk]
    tokens: list[list[str]] | None = None  # the chunks' BM25 tokens, when the task asked and tokenising worked


_chunkers: dict[str, Any] = {}  # per process: a Chunker per fingerprint (its tokenizer loads once)


def read_file(task: ReadTask) -> ReadResult:
    """Load one file, check the text and chunk limits, chunk it. Runs in the child (or in-process)."""
    from rag.ingest.chunking import Chunker, without_lone_surrogates

    limits = task.ingest.limits
    loaded = task.factory(task.section, task.ingest).load(Path(task.path), task.doc_id)
    check_text(loaded.documents, limits)
    for document in loaded.documents:  # stored as UTF-8: a lone surrogate (JSON "\ud800") could not be
        document.text, document.title = without_lone_surrogates(document.text), without_lone_surrogates(document.title)
    chunker = _chunkers.get(task.fingerprint)
    if chunker is None:
        chunker = _chunkers[task.fingerprint] = Chunker(task.chunking, task.fingerprint)
    chunks = chunker.chunk_all(loaded.documents, task.source, loaded.file_type)
    check_chunks(chunks, limits)
    return ReadResult(loaded, chunks, _bm25_tokens(task.bm25, chunks) if task.bm25 is not None else None)


def _bm25_tokens(config: BM25Config, chunks: list[Chunk]) -> list[list[str]] | None:
    """The chunks' BM25 tokens, or None if tokenising failed: they only spare the refresh the work (it then
    tokenises the texts itself, and reports an error there), so the file is not failed for it."""
    from rag.index.bm25 import Tokenizer

    try:
        return Tokenizer(config).token_lists([c.text for c in chunks])
    except Exception:  # noqa: BLE001 - see above
        return None


def read_in_process(task: ReadTask) -> ReadResult:
    """`read_file` with the error mapping the child applies (OS errors and MemoryError become reasons)."""
    try:
        return read_file(task)
    except (LoadError, UnsupportedType):
        raise
    except BaseException as exc:  # noqa: BLE001 - a parser's failure on one file is that file's reason
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise _reason(exc, task) from None


def os_reason(exc: OSError) -> str:
    """A user's reason for an OS error on one file (it went away, it may not be read...)."""
    if isinstance(exc, FileNotFoundError):
        return "the file was removed before it could be read"
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read by this user (check its permissions)"
    return exc.strerror or str(exc)


def _reason(exc: BaseException, task: ReadTask) -> LoadError:
    if isinstance(exc, OSError):
        return LoadError(os_reason(exc))
    if isinstance(exc, MemoryError):
        limit = task.ingest.limits.max_memory_mb
        return over("reading it needed", "more memory than allowed", "max_memory_mb", limit)
    if isinstance(exc, RecursionError):
        return LoadError("the file is nested too deeply for its parser (RecursionError)")
    return LoadError(f"unexpected error reading the file: {type(exc).__name__}: {exc}")


class ReaderChild:
    """A reader's child process and its pipe: spawned before it has a task, so that its interpreter start and
    imports overlap its parent's work. It waits for a `FileReader` to adopt it (and send it its limits)."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        self.process, self.conn = process, conn

    @classmethod
    def spawn(cls, preload: tuple[str, ...] = PRELOAD) -> "ReaderChild":
        """Start a child that imports `preload` (names that fail to import are left to the read) and then waits."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=_child_main, args=(theirs, preload), daemon=True)
        process.start()
        theirs.close()
        return cls(process, ours)

    def kill(self) -> None:
        """Stop it now (SIGKILL, never a wait on a child still importing) and close the pipe; idempotent."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()

    def __enter__(self) -> "ReaderChild":
        return self

    def __exit__(self, *exc: object) -> None:
        """The caller's scope ends: a child nobody adopted (or one left behind) is killed; a closed one is gone."""
        self.kill()


class FileReader:
    """Reads files for one ingest; use as a context manager so the child process is stopped at the end.

    `child`: a `ReaderChild` started earlier, adopted as the first child (killed at once when the reader reads
    in this process, or at `close` when no file was sent)."""

    def __init__(self, ingest: IngestConfig, child: ReaderChild | None = None) -> None:
        self.limits = ingest.limits
        self._spare = child if child is not None and self.limits.isolate else None
        if child is not None and self._spare is None:
            child.kill()  # files are read in this process: nothing will use it
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._busy = False  # a file was sent and its answer not yet received
        self._ahead: tuple[ReadTask, float] | None = None  # a task sent by `read_ahead`, and when

    def __enter__(self) -> "FileReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the child now rather than at the first `read`: it boots (a fresh interpreter, about half a
        second) while this process does other work, such as opening the index's vector store."""
        if self.limits.isolate:
            self._ensure_child()

    def read_ahead(self, task: ReadTask) -> None:
        """Send `task` to the child now, so that it reads the file while this process does other work (opens the
        vector store); the `read` of the same task then only collects the result. Nothing happens for a task
        read in this process."""
        if self._ahead is not None or not self.limits.isolate or not _can_send(task):
            return
        conn = self._ensure_child()
        conn.send(task)
        self._busy = True
        self._ahead = (task, time.monotonic())

    def read(self, task: ReadTask, while_slow: Callable[[], object] | None = None, slow_after_s: float = 1.0) -> ReadResult:
        """The file's documents and chunks, or a `LoadError` / `UnsupportedType` with the reason.

        `while_slow` is called once, here, when the child has worked on the file for `slow_after_s`: the ingest
        commits the files read before it then, so a file that takes long (or hangs) holds back nothing else.
        """
        if self._ahead is not None and self._ahead[0] != task:
            raise RuntimeError(f"{task.path} read while the file read ahead ({self._ahead[0].path}) was not collected")
        if self._ahead is None:
            if not self.limits.isolate or not _can_send(task):
                return read_in_process(task)
            self.read_ahead(task)  # sent now: this read waits for it at once
        assert self._ahead is not None and self._conn is not None
        (_, since), self._ahead = self._ahead, None
        result = self._wait(self._conn, while_slow, slow_after_s, since)
        self._busy = False
        return result

    def close(self) -> None:
        """Let an idle child exit; kill one still reading (the run was interrupted mid-file) or never used."""
        if self._spare is not None:
            self._spare.kill()
            self._spare = None
        if self._busy:
            self._stop_child()
        if self._conn is not None:
            try:
                self._conn.send(None)  # asks the child to exit
            except OSError:
                pass
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

    # --- the child -------------------------------------------------------------------------
    def _ensure_child(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._stop_child()
        child, self._spare = self._spare, None
        if child is None or not child.process.is_alive():
            if child is not None:
                child.kill()
            child = ReaderChild.spawn(preload=())  # imported on its first task, as a replacement needs no head start
        child.conn.send(_Setup(list(sys.path), self.limits.max_memory_mb))
        self._process, self._conn = child.process, child.conn
        return child.conn

    def _stop_child(self) -> None:
        self._busy, self._ahead = False, None
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def _wait(self, conn: Connection, while_slow: Callable[[], object] | None, slow_after_s: float, since: float) -> ReadResult:
        """The child's answer to the task sent at `since` (monotonic), within the time and memory limits."""
        import psutil

        assert self._process is not None and self._process.pid is not None
        watched = psutil.Process(self._process.pid)
        started = since
        deadline = started + self.limits.timeout_s
        limit_bytes = self.limits.max_memory_mb * _MB
        while not conn.poll(_POLL_S):
            if while_slow is not None and time.monotonic() - started >= slow_after_s:
                while_slow()
                while_slow = None
            if not self._process.is_alive():
                code = self._process.exitcode
                self._stop_child()
                signal_name = signal.Signals(-code).name if code is not None and code < 0 else None
                return _raise(LoadError(f"the reader process died ({signal_name or f'exit code {code}'}) on this file"))
            if time.monotonic() > deadline:
                self._stop_child()
                return _raise(over("reading took", f"more than {self.limits.timeout_s:g} s", "timeout_s", self.limits.timeout_s))
            try:
                rss = watched.memory_info().rss
            except psutil.Error:
                continue
            if rss > limit_bytes:
                self._stop_child()
                return _raise(over("reading used", f"{rss / _MB:,.0f} MB of memory", "max_memory_mb", self.limits.max_memory_mb))
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            self._stop_child()
            raise LoadError("the reader process died on this file") from None
        if status == "ok":
            result: ReadResult = payload  # the child replies ("ok", ReadResult) or ("error", (kind, message))
            return result
        kind, message = payload
        raise (UnsupportedType if kind == "unsupported" else LoadError)(message)


def _raise(error: LoadError) -> ReadResult:
    raise error


def _can_send(task: ReadTask) -> bool:
    """A loader factory defined inside a function cannot reach another process: it is read here instead."""
    try:
        pickle.dumps(task.factory)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _child_main(conn: Connection, preload: tuple[str, ...]) -> None:
    """The child's loop: import `preload`, take its `_Setup`, then read tasks until told to stop (None) or the
    parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    _die_with_parent()
    _import_quietly(preload)
    try:
        setup = conn.recv()
    except (EOFError, OSError):
        return
    if not isinstance(setup, _Setup):
        return
    sys.path[:] = setup.sys_path  # plug-in loaders import as they do in the parent
    _cap_address_space(setup.max_memory_mb)  # after the imports: the cap is on what reading a file allocates
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:  # done: exit without tearing the interpreter down (a tenth of a second the parent waits on)
            conn.close()
            _release_semaphores()
            os._exit(0)
        try:
            reply: tuple[str, Any] = ("ok", read_in_process(task))
        except UnsupportedType as exc:
            reply = ("error", ("unsupported", str(exc)))
        except LoadError as exc:
            reply = ("error", ("load", str(exc)))
        conn.send(reply)


def _import_quietly(names: tuple[str, ...]) -> None:
    """Import what the reads will need; a module that fails here fails (and is reported) where a read imports it."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - see above
            pass


def _release_semaphores() -> None:
    """Unlink the named semaphores this child made (bm25s' tokenizer makes tqdm's lock), as a normal exit's
    finalizers would: `os._exit` skips them, and the resource tracker then reports them leaked at the end."""
    from multiprocessing import util

    util._run_finalizers()  # multiprocessing's own exit step, without the interpreter's teardown


def _die_with_parent() -> None:
    """A child busy in a hanging parser never reads the pipe that would tell it the ingest is gone (SIGKILL):
    the kernel kills it when its parent dies."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the time limit still stops a hanging read while the ingest lives
    if os.getppid() == 1:  # the parent died before the call above
        os._exit(1)


def _cap_address_space(max_memory_mb: int) -> None:
    """Allocations past `max_memory_mb` above the child's present size fail with MemoryError, quickly."""
    import resource

    try:
        with open(f"/proc/{os.getpid()}/statm") as handle:
            size_now = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return  # not Linux: the parent's memory polling still applies
    cap = size_now + 2 * max_memory_mb * _MB  # the threads of tokenizers reserve address space they never touch
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
