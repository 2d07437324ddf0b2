"""One vector store handle per store and process, shared by every open `Index`, kept fresh across writers.

A handle may not see what other processes committed (embedded Chroma keeps a per-process state): when a
reader's catalog generation moved on and no writer of this process is at work, the shared handle is replaced
by `VectorStore.refreshed()`; requests in flight finish on the handle they started with. While a writer of this
process is at work, readers share its handle (they only rank chunks their read snapshot committed, so the
writer's uncommitted vectors are never seen). Stores whose handles always see every write return themselves
from `refreshed()`, so for them this costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from rag.index.contracts import VectorStore


class SharedHandle:
    """The handle of one vector store in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: VectorStore | None = None
        self._generation: int | None = None
        self._writers = 0

    def for_reader(self, generation: int, open_store: Callable[[], VectorStore]) -> VectorStore:
        """The handle for a reader whose catalog is at `generation` (its read snapshot's, inside one)."""
        with self._lock:
            if self._store is None:
                self._store = open_store()
            elif generation != self._generation and not self._writers:
                self._store = self._store.refreshed()
            if not self._writers:
                self._generation = generation
            return self._store

    def begin_write(self, generation: int, open_store: Callable[[], VectorStore]) -> VectorStore:
        """The handle a writer of this process (holding the index's write lock) must use."""
        with self._lock:
            if self._store is None:  # nothing in this process opened it before: a new handle is up to date
                self._store = open_store()
            elif generation != self._generation and not self._writers:
                self._store = self._store.refreshed()
            self._generation = generation
            self._writers += 1
            return self._store

    def end_write(self, generation: int) -> None:
        with self._lock:
            self._generation = generation
            self._writers = max(0, self._writers - 1)

    def close(self) -> None:
        """Close the handle (stores that hold resources have a `close()`); the next user opens a new one."""
        with self._lock:
            store, self._store, self._generation = self._store, None, None
        close = getattr(store, "close", None)
        if close is not None:
            close()


class SharedHandles:
    """The shared handle of each vector store in this process, by the store's identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[Hashable, SharedHandle] = {}

    def get(self, key: Hashable) -> SharedHandle:
        with self._lock:
            return self._handles.setdefault(key, SharedHandle())

    def close_all(self) -> None:
        """Close every handle of this process: for a command-line run that ends without the interpreter's teardown."""
        with self._lock:
            handles = list(self._handles.values())
        for handle in handles:
            handle.close()


VECTOR_HANDLES = SharedHandles()
