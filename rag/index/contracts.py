"""The index's contracts: what an index keeps, behind which protocols, so one backend can replace another.

An index is an `IndexBackend` (chosen by the index location: a folder path or a URL, see `rag.index.backends`)
that opens:
- a `Catalog`: sources, documents, chunks, their groups and tags, meta values, the generation counter and the
  write journal. It is the source of truth; the other stores are derived from it.
- a `VectorStore`: chunk vectors with enough metadata to filter;
- a `LexicalStore`: the BM25 index over the catalog's chunk texts;
- a `KeyStore`: the API keys of `rag serve`;
- an `EmbeddingCache` around the configured `Embedder`.

`rag.index.store.Index` holds one opened backend for the rest of the package; `rag.index.writer.IndexWriter`
is the only code that writes to it. The contract suites in `rag.testing` check implementations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rag.config import BM25Config, VectorStoreBase
from rag.core.access import Access
from rag.types import Chunk, Document

if TYPE_CHECKING:
    from rag.index.bm25 import BM25Index

Metadata = dict[str, str | int | float | bool]


# --- embeddings ----------------------------------------------------------------------------------
class Embedder(Protocol):
    """One job: texts in, an (n, dim) float32 array of L2-normalised vectors out (n = 0: zero rows).

    `model_id` names the model and everything that changes its vectors; it keys the embedding cache, so two
    embedders with one id must give the same vectors.
    """

    model_id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class EmbeddingCache(Embedder, Protocol):
    """An embedder that remembers every vector it made, so no text is embedded twice for one index."""

    embedded_count: int  # texts actually sent to the model since it was opened

    def close(self) -> None: ...


# --- vectors -------------------------------------------------------------------------------------
class VectorStore(Protocol):
    """Chunk vectors by chunk id, searched by cosine similarity; checked by `rag.testing.VectorStoreContract`.

    Vectors arrive L2-normalised. `where` in `query` is an equality filter on one metadata key
    (`{"source": "/abs/path"}`). A store splits batches itself when its backend limits their size.
    """

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[Metadata]) -> None: ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def ids(self) -> set[str]: ...

    def count(self) -> int: ...

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Up to k (id, cosine similarity) pairs, most similar first; [] for an empty store or k <= 0."""
        ...

    def get_vectors(self, ids: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of those ids that exist, as (ids, matrix with one row per id)."""
        ...

    def drop(self) -> None:
        """Remove every vector; the store stays usable (the embedding model changed)."""
        ...

    def refreshed(self) -> "VectorStore":
        """A handle that sees every write committed so far by any process.

        Stores whose handles always do (a server, a database) return themselves; embedded Chroma, which keeps a
        per-process state, returns a new handle after re-reading the folder (handles given out earlier keep working and
        see the re-read state too: one engine per folder per process, `rag/index/chroma_embedded.py`).
        """
        ...


@dataclass(frozen=True, slots=True)
class StorePlace:
    """Where an index wants its vectors: what a vector store factory gets besides its config section."""

    folder: Path | None  # the index folder, for stores kept inside it; None when the index is not a folder
    collection: str  # the collection name to use unless the config names one (derived from the index id)


# --- the catalog ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One ingested source (a file, or a named list of documents) as the catalog keeps it."""

    path: str  # the source's key: an absolute path for files, a name such as "langchain:docs" otherwise
    display_path: str  # the path as the user gave it at ingest
    file_type: str
    content_hash: str
    fingerprint: str  # the config fingerprint its chunks were made with
    size: int
    mtime: float
    pages: int
    documents: int
    chunks: int
    ingested_at: float
    tags: str = "[]"  # JSON list
    groups: str = "[]"  # JSON list: the source-level reader groups given at ingest

    @property
    def tag_list(self) -> list[str]:
        return list(json.loads(self.tags))

    @property
    def group_list(self) -> list[str]:
        return list(json.loads(self.groups))


class Catalog(Protocol):
    """Sources, documents, chunks, groups, tags, meta values, the generation counter and the write journal.

    Every committed change readers can see (chunks, documents, groups, tags) increments `generation()` in the
    same transaction, so readers notice changes with one cheap read. Meta keys in use: index_id, config,
    embedding_model, dirty, bm25_generation, groups_epoch.

    Writes follow the writer's protocol for one source: `begin_source_write` (journal the chunk ids about to
    be written to the vector store), the vector writes, then `commit_source` (make it all visible at once and
    clear the journal entry) or, on failure, `abort_source_write`. A backend whose vectors live in the same
    database may make that one transaction; the folder backend journals so a crash can be repaired.
    """

    location: str  # identifies the index in this process (process-wide caches are keyed by it)

    def close(self) -> None: ...

    # meta and generations
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def generation(self) -> int: ...

    def begin_read(self) -> None:
        """Start a read snapshot: until `end_read`, every read sees one committed state."""
        ...

    def end_read(self) -> None: ...

    # reads
    def sources(self) -> list[SourceRecord]: ...

    def source(self, path: str) -> SourceRecord | None: ...

    def chunk_ids_of(self, path: str) -> set[str]: ...

    def all_chunk_ids(self) -> set[str]: ...

    def chunk_count(self) -> int: ...

    def chunk_texts(self) -> tuple[list[str], list[str]]:
        """All chunk ids and texts, ordered by chunk id (for building BM25)."""
        ...

    def chunks_by_id(self, chunk_ids: list[str]) -> list[Chunk]:
        """The chunks that exist, in the order asked."""
        ...

    def chunks_at(self, positions: list[tuple[str, str, int]]) -> list[Chunk]:
        """The chunks that exist at these (source, doc_id, ordinal) positions, in any order (neighbour expansion:
        one read for every passage's neighbours, not one per passage)."""
        ...

    def document(self, source: str, doc_id: str) -> Document | None: ...

    def documents(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        """The documents that exist among these (source, doc_id) keys, in one read."""
        ...

    def chunk_groups(self) -> Iterator[tuple[str, str]]:
        """(chunk id, JSON list of its document's groups) for every committed chunk."""
        ...

    # writes: only `IndexWriter` calls these
    def begin_source_write(self, path: str, added: list[str]) -> None: ...

    def commit_source(self, record: SourceRecord, documents: list[Document], chunks: list[Chunk]) -> None:
        """Replace everything known about one source and clear its journal entry, atomically."""
        ...

    def abort_source_write(self, path: str) -> None: ...

    def set_tags(self, path: str, tags: list[str]) -> None: ...

    def remove_source(self, path: str) -> None: ...

    def pending(self) -> dict[str, list[str]]:
        """The write journal: source -> chunk ids being written to the vector store, not committed yet."""
        ...

    def clear_pending(self) -> None: ...

    def fill_token_counts(self, count: Callable[[list[str]], list[int]]) -> int:
        """Store the token counts of chunks written before counts were kept; returns how many (a writer's migration)."""
        ...

    def reset_chunks(self) -> None:
        """Forget every chunk (the embedding model changed); sources stay, marked to be read again."""
        ...


# --- the lexical index ---------------------------------------------------------------------------
class LexicalStore(Protocol):
    """Where the BM25 index over the catalog's chunk texts is kept, and which version readers should use."""

    def generation(self, catalog: Catalog) -> str | None:
        """The version readers should use now (None before the first build); changes whenever it is rebuilt."""
        ...

    def refresh(self, catalog: Catalog, config: BM25Config) -> bool:
        """Rebuild if the chunk set or the settings changed since the last build; True if it rebuilt."""
        ...

    def load(self, catalog: Catalog, config: BM25Config) -> "BM25Index":
        """The current version; a RagError with a fix when it is missing."""
        ...


# --- API keys ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    groups: tuple[str, ...]
    admin: bool
    created_at: float
    revoked_at: float | None = None

    @property
    def access(self) -> Access:
        """Admins read everything; other keys read their groups' documents and those without groups."""
        return Access.unrestricted() if self.admin else Access.of_groups(self.groups)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key_id": self.key_id,
            "groups": list(self.groups),
            "admin": self.admin,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class KeyStore(Protocol):
    """API keys, stored hashed; the secret is returned once, by `create`. Revocations apply at the next request."""

    def create(self, name: str, groups: tuple[str, ...], admin: bool = False) -> tuple[ApiKey, str]: ...

    def list(self, include_revoked: bool = False) -> list[ApiKey]: ...

    def revoke(self, name: str) -> bool: ...

    def authenticate(self, token: str) -> ApiKey | None: ...

    def export_hashed(self) -> list[tuple[ApiKey, str]]:
        """Every key, revoked ones too, with its stored hash (what `rag index copy` carries; no secret exists)."""
        ...

    def import_hashed(self, keys: list[tuple[ApiKey, str]]) -> int:
        """Add keys exported from another index; a key whose id, or active name, is already here is skipped.
        Returns how many were added."""
        ...


# --- the backend ---------------------------------------------------------------------------------
class WriteLock(Protocol):
    """Held by the one writer of an index (other writers are refused with a RagError while it is held)."""

    def release(self) -> None: ...


class IndexBackend(Protocol):
    """Everything an index keeps, opened from one location. Constructing one is cheap: stores open on demand.

    Built by `rag.index.backends.open_backend(location)`: a folder path gives `rag.index.folder.FolderBackend`;
    a URL `scheme://...` the backend registered under that scheme (`rag.core.registry.INDEX_BACKENDS`).
    """

    location: str  # as the user gave it (a URL's password masked): for messages and cache keys

    def exists(self) -> bool:
        """Whether an index was created here (readers refuse to open one that was not)."""
        ...

    def lock_writer(self) -> WriteLock:
        """Create the index if needed and take its write lock; RagError if another writer holds it."""
        ...

    def open_catalog(self) -> Catalog: ...

    def open_vectors(self, config: VectorStoreBase, catalog: Catalog) -> VectorStore: ...

    def lexical_store(self) -> LexicalStore: ...

    def embedding_cache(self, inner: Embedder) -> EmbeddingCache: ...

    def key_store(self) -> KeyStore:
        """The API keys; RagError when there is no index here."""
        ...

    def uploads_dir(self) -> Path:
        """A folder for files sent to the server to be ingested (they stay, so re-ingest can see them)."""
        ...
