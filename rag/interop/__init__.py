"""Adapters for LangChain and LlamaIndex users: our hybrid retrieval behind their retriever interfaces.

- `rag.interop.langchain.RagRetriever`: a `langchain_core` retriever returning `Document`s.
- `rag.interop.llamaindex.RagLlamaRetriever`: a `llama_index.core` retriever returning `NodeWithScore`s.
- `rag.ingest.external.ingest_documents`: index documents made by their loaders as one logical source.

Install the frameworks with the `interop` extra (`pip install rag[interop]`). This package stays
import-light: LangChain and LlamaIndex are imported only when one of the adapter classes is first used,
and the index (Chroma, the embedding model) only when a retriever is built.

Both adapters share `IndexSearcher`: one read-only `Index` and one `HybridSearcher`, used from a
single worker thread, because the manifest's SQLite connection may only be used by the thread that
opened it while the frameworks call retrievers from executor threads (LangChain's `ainvoke`) and
from several threads at once.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.config import RagConfig
    from rag.retrieve.filters import Filters
    from rag.retrieve.search import HybridSearcher
    from rag.types import ScoredChunk

# Metadata keys every adapter returns with a chunk.
METADATA_KEYS = ("source", "source_key", "doc_id", "chunk_id", "start", "end", "page", "heading_path", "score", "scores")


class IndexSearcher:
    """One index opened read-only, searched with one `HybridSearcher` on one worker thread.

    Every search first catches up with what writers committed since the last one (`Index.sync`, which the
    searcher calls: a new BM25 version, fresh vectors), so long-lived retrievers stay correct.
    """

    def __init__(self, index_dir: str | Path, config: "RagConfig | None" = None) -> None:
        self.index_dir = Path(index_dir)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-index")
        self._state: dict[str, Any] = {}
        try:
            self._executor.submit(_open, self._state, self.index_dir, config).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self._finalizer = weakref.finalize(self, _close, self._executor, self._state)

    @property
    def config(self) -> "RagConfig":
        return self._state["config"]

    def search(self, query: str, filters: "Filters | None" = None, k: int | None = None) -> list["ScoredChunk"]:
        """The top `k` chunks (default `retrieval.top_k`) for one query, best first."""
        return self._submit(query, filters, k).result()

    async def asearch(self, query: str, filters: "Filters | None" = None, k: int | None = None) -> list["ScoredChunk"]:
        return await asyncio.wrap_future(self._submit(query, filters, k))

    def _submit(self, query: str, filters: "Filters | None", k: int | None) -> Any:
        if not self._finalizer.alive:
            raise RuntimeError(f"the retriever over {self.index_dir} was closed")
        return self._executor.submit(_search, self._state, query, filters, k)

    def close(self) -> None:
        """Release the index; the searcher cannot be used afterwards."""
        self._finalizer()

    def __enter__(self) -> "IndexSearcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunk_metadata(scored: "ScoredChunk") -> dict[str, Any]:
    """The metadata an adapter attaches to a retrieved chunk (JSON-serialisable).

    `source` is the path as given at ingest (or the name given to `ingest_documents`), `source_key`
    the manifest's key for it: `index.manifest.document(source_key, doc_id).text[start:end]` is the
    chunk's text.
    """
    chunk = scored.chunk
    return {
        "source": scored.source_display or chunk.source,
        "source_key": chunk.source,
        "doc_id": chunk.doc_id,
        "chunk_id": chunk.chunk_id,
        "start": chunk.start,
        "end": chunk.end,
        "page": chunk.page,
        "heading_path": list(chunk.heading_path),
        "score": float(scored.score),
        "scores": {name: float(value) for name, value in scored.scores.items()},
    }


def as_filters(value: Any) -> "Filters":
    """Accept `Filters`, a mapping of its fields (lists or tuples), or None (no filter)."""
    from rag.retrieve.filters import Filters

    if value is None:
        return Filters()
    if isinstance(value, Filters):
        return value
    if isinstance(value, dict):
        unknown = set(value) - {"sources", "file_types", "tags"}
        if unknown:
            raise ValueError(f"unknown filter field(s) {sorted(unknown)}: use sources, file_types, tags")
        return Filters(**{name: _strings(name, items) for name, items in value.items()})
    raise TypeError(f"filters must be rag.retrieve.filters.Filters or a dict, not {type(value).__name__}")


def _strings(name: str, items: Any) -> tuple[str, ...]:
    if isinstance(items, str):
        return (items,)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"filter field {name} must hold strings")
    return tuple(items)


# --- run on the worker thread -------------------------------------------------------------------
def _open(state: dict[str, Any], index_dir: Path, config: "RagConfig | None") -> None:
    from rag.config import load_config
    from rag.index.store import Index
    from rag.retrieve.search import HybridSearcher

    config = config if config is not None else load_config(None)
    state["thread"] = threading.get_ident()
    state["config"] = config
    index = Index.open(index_dir, config, writable=False)
    try:
        state["index"] = index
        state["searcher"] = HybridSearcher(index, config.retrieval)
    except BaseException:
        state.pop("index", None)
        index.close()
        raise


def _search(state: dict[str, Any], query: str, filters: "Filters | None", k: int | None) -> list["ScoredChunk"]:
    from rag.core.access import Access

    if "index" not in state:
        raise RuntimeError("this retriever was closed")
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    searcher: HybridSearcher = state["searcher"]
    return searcher.search([query], as_filters(filters), limit=k, access=Access.unrestricted()).chunks


def _close(executor: ThreadPoolExecutor, state: dict[str, Any]) -> None:
    def release() -> None:
        index = state.pop("index", None)
        state.pop("searcher", None)
        if index is not None:
            index.close()

    if threading.get_ident() == state.get("thread"):  # garbage-collected on the worker itself: waiting would deadlock
        release()
    else:
        try:
            executor.submit(release).result()
        except RuntimeError:  # interpreter shutting down: the executor no longer takes work
            pass
    executor.shutdown(wait=False)
