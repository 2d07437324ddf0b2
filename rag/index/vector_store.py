"""The built-in vector store: Chroma, embedded under the index folder (its engine driven directly by
`rag.index.chroma_embedded`, without importing chromadb's client) or a Chroma server (`chromadb.HttpClient`).

The contract it implements is `rag.index.contracts.VectorStore`; `rag.testing.VectorStoreContract` checks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from rag.config import VectorStoreBase
from rag.errors import RagError
from rag.index.contracts import Metadata, StorePlace, VectorStore

__all__ = ["ChromaVectorStore", "Metadata", "VectorStore", "open_chroma", "open_chroma_store"]

class ChromaVectorStore:
    """A cosine-space Chroma collection fed with our own vectors (Chroma's default embedder downloads)."""

    def __init__(self, client: Any, name: str, folder: Path | None = None) -> None:
        """`folder`: the index folder of an embedded client (None for a server), whose engine `refreshed` restarts."""
        self._client = client
        self.name = name
        self._folder = folder
        self._collection = client.get_or_create_collection(
            name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        self._max_batch = int(client.get_max_batch_size())

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[Metadata]) -> None:
        # Chroma refuses batches above its max batch size: split instead of failing after embedding.
        for begin in range(0, len(ids), self._max_batch):
            end = begin + self._max_batch
            self._collection.upsert(
                ids=list(ids[begin:end]), embeddings=vectors[begin:end], metadatas=list(metadatas[begin:end])
            )

    def delete(self, ids: Iterable[str]) -> None:
        id_list = list(ids)
        for begin in range(0, len(id_list), self._max_batch):
            self._collection.delete(ids=id_list[begin : begin + self._max_batch])

    def ids(self) -> set[str]:
        found: set[str] = set()
        page = 10_000
        offset = 0
        while True:
            batch = self._collection.get(include=[], limit=page, offset=offset)["ids"]
            found.update(batch)
            if len(batch) < page:
                return found
            offset += page

    def count(self) -> int:
        return int(self._collection.count())

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        # Chroma returns what it has when k exceeds the collection (nothing when it is empty): no count() per query
        result = self._collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=k, where=where, include=["distances"]
        )
        return [(chunk_id, 1.0 - float(distance)) for chunk_id, distance in zip(result["ids"][0], result["distances"][0])]

    def get_vectors(self, ids: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of these ids (those that exist), as (ids, matrix)."""
        id_list = sorted(set(ids))
        found_ids: list[str] = []
        matrices: list[np.ndarray] = []
        for begin in range(0, len(id_list), self._max_batch):
            got = self._collection.get(ids=id_list[begin : begin + self._max_batch], include=["embeddings"])
            if len(got["ids"]):
                found_ids.extend(got["ids"])
                matrices.append(np.asarray(got["embeddings"], dtype=np.float32))
        return found_ids, np.vstack(matrices) if matrices else np.zeros((0, 0), dtype=np.float32)

    def drop(self) -> None:
        self._client.delete_collection(self.name)
        self._collection = self._client.get_or_create_collection(
            name=self.name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )

    def close(self) -> None:
        """Release the client (for embedded Chroma: its database and index files), as Chroma does at exit."""
        self._client.close()

    def refreshed(self) -> "ChromaVectorStore":
        """Embedded Chroma shares one in-memory state per folder within a process and does not notice another
        process's writes: its engine restarts to re-read the folder (every handle of the folder in this process
        then works on that state: one engine per folder, see rag.index.chroma_embedded). A server's handle
        always sees every write."""
        if self._folder is None:
            return self
        return ChromaVectorStore(self._client.refreshed(), self.name, folder=self._folder)


def open_chroma_store(config: VectorStoreBase, place: StorePlace) -> ChromaVectorStore:
    """The `chroma` vector store factory: the server at `vector_store.url`, else embedded in the index folder."""
    if config.url is None and place.folder is None:
        raise RagError("embedded Chroma needs an index folder", "set vector_store.url to a Chroma server, or use a folder index")
    return open_chroma(place.folder or Path("."), config.url, config.collection or place.collection)


def open_chroma(index_dir: Path, url: str | None, collection: str) -> ChromaVectorStore:
    """Embedded Chroma under `index_dir/chroma`, or the server at `url`; errors say how to fix."""
    if url is None:
        from rag.index.chroma_embedded import EmbeddedChromaClient

        return ChromaVectorStore(EmbeddedChromaClient(index_dir / "chroma"), collection, folder=index_dir)
    parsed = urlparse(url)
    if not parsed.hostname:
        raise RagError(f"bad vector_store.url {url!r}", "use a URL such as http://127.0.0.1:8000")
    import chromadb
    from chromadb.config import Settings

    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=Settings(anonymized_telemetry=False),
        )
        client.heartbeat()
    except Exception as exc:  # chromadb raises several transport error types
        raise RagError(
            f"cannot reach the Chroma server at {url}: {exc}",
            "start it with `chroma run --path DIR --host 127.0.0.1 --port 8000` or fix vector_store.url",
        ) from None
    return ChromaVectorStore(client, collection)
