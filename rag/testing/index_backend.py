"""The index backend contract (`rag.index.contracts.IndexBackend` and the stores it opens) as a test suite.

It writes through the one writer (`IndexWriter`) and reads through `Index`, as every entry point does, and
checks the rules the rest of the package relies on: catalog, vectors and BM25 hold the same chunks after every
write; an interrupted write is made whole by the next writer; readers see one committed state inside a read
snapshot and catch up with `sync()`; one writer at a time; per-document groups; API keys.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from rag.config import RagConfig, load_config
from rag.errors import RagError
from rag.index.contracts import SourceRecord
from rag.index.store import Index
from rag.index.writer import IndexWriter, SourceWrite
from rag.ingest.chunking import Chunker
from rag.types import Document

Location = str | os.PathLike[str]
PLUGIN_EMBEDDER = "rag.testing.fakes:HashEmbedder"  # vectors without a model (and a plug-in, resolved by dotted path)


def contract_config(*overrides: str) -> RagConfig:
    """Small chunks and the hashing embedder, plus `overrides` (`section.key=value`, as with --set)."""
    return load_config(None, [f"embedding.provider={PLUGIN_EMBEDDER}", "chunking.size=32", "chunking.overlap=4", *overrides])


def source(config: RagConfig, name: str, paragraphs: list[str], groups: tuple[str, ...] = ()) -> SourceWrite:
    """One source of one document, chunked as the ingestors chunk."""
    text = "\n\n".join(paragraphs)
    document = Document(doc_id=name, text=text, title=name, groups=groups)
    fingerprint = config.indexing_fingerprint("text")
    chunks = Chunker(config.chunking, fingerprint).chunk(document, f"/contract/{name}", "text")
    record = SourceRecord(
        path=f"/contract/{name}", display_path=name, file_type="text", content_hash=str(hash(text)), fingerprint=fingerprint,
        size=len(text), mtime=time.time(), pages=0, documents=1, chunks=len(chunks), ingested_at=time.time(),
        groups=json.dumps(sorted(groups)),
    )
    return SourceWrite(record, [document], chunks)


def paragraphs(topic: str, n: int = 6) -> list[str]:
    return [f"Paragraph {i} about {topic}: " + " ".join(f"{topic}{i}word{j}" for j in range(12)) for i in range(n)]


def assert_consistent(index: Index) -> set[str]:
    """Catalog, vector store and BM25 hold exactly the same chunks, and nothing is journalled."""
    ids = index.manifest.all_chunk_ids()
    assert index.vectors.ids() == ids
    assert set(index.bm25().chunk_ids) == ids
    assert not index.manifest.pending()
    for record in index.manifest.sources():
        assert len(index.manifest.chunk_ids_of(record.path)) == record.chunks
    return ids


class IndexBackendContract:
    """Provide `index_location`: where a new, empty index may be created (a folder path, or a URL whose scheme
    names your backend). The suite opens it with `Index.open`, so the location alone must select the backend.
    Override the `index_config` fixture to add settings (e.g. `contract_config("vector_store.url=...")`)."""

    @pytest.fixture
    def index_config(self) -> RagConfig:
        return contract_config()

    def write(self, location: str | os.PathLike[str], config: RagConfig, *writes: SourceWrite) -> list[str]:
        """Commit `writes` through one writer; the sources it committed."""
        with Index.open(location, config, writable=True) as index, IndexWriter(index) as writer:
            committed = [c.path for w in writes for c in writer.stage(w)]
            committed += [c.path for c in writer.flush()]
        return committed

    def test_a_new_location_holds_no_index_until_written(self, index_location: Location, index_config: RagConfig) -> None:
        with pytest.raises(RagError) as missing:
            Index.open(index_location, index_config)
        assert "no index at" in missing.value.message
        self.write(index_location, index_config, source(index_config, "a", paragraphs("alpha")))
        with Index.open(index_location, index_config) as index:
            assert index.manifest.chunk_count() > 0

    def test_written_sources_agree_everywhere(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        committed = self.write(index_location, config, *(source(config, name, paragraphs(name)) for name in ("alpha", "beta", "gamma")))
        assert sorted(committed) == ["/contract/alpha", "/contract/beta", "/contract/gamma"]
        with Index.open(index_location, config) as index:
            ids = assert_consistent(index)
            assert len(ids) > 3
            document = index.manifest.document("/contract/beta", "beta")
            assert document is not None and document.text == "\n\n".join(paragraphs("beta"))
            chunks = index.manifest.chunks_by_id(sorted(ids))
            for chunk in chunks:
                stored = index.manifest.document(chunk.source, chunk.doc_id)
                assert stored is not None and stored.text[chunk.start : chunk.end] == chunk.text
            # the batched reads of context assembly: positions and keys that exist are found, the others skipped
            positions = [(c.source, c.doc_id, c.ordinal) for c in chunks] + [("/contract/beta", "beta", 10_000), ("/nowhere", "x", 0)]
            assert sorted(index.manifest.chunks_at(positions), key=lambda c: c.chunk_id) == sorted(chunks, key=lambda c: c.chunk_id)
            assert index.manifest.chunks_at([]) == []
            keys = [("/contract/alpha", "alpha"), ("/contract/beta", "beta"), ("/nowhere", "x")]
            documents = index.manifest.documents(keys)
            assert set(documents) == set(keys[:2]) and documents[keys[1]] == document
            assert index.manifest.documents([]) == {}

    def test_a_rewritten_source_replaces_exactly_its_changed_chunks(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        before = paragraphs("alpha")
        self.write(index_location, config, source(config, "alpha", before), source(config, "beta", paragraphs("beta")))
        with Index.open(index_location, config) as index:
            old = index.manifest.chunk_ids_of("/contract/alpha")
            beta = index.manifest.chunk_ids_of("/contract/beta")
        after = [*before[:-1], "A new last paragraph about zebras crossing the road."]
        with Index.open(index_location, config, writable=True) as index, IndexWriter(index) as writer:
            (committed,) = writer.stage(source(config, "alpha", after)) + writer.flush()
            assert not committed.new and committed.added >= 1 and committed.removed >= 1
            assert committed.added < len(old)  # unchanged chunks keep their ids (and vectors)
        with Index.open(index_location, config) as index:
            assert_consistent(index)
            assert index.manifest.chunk_ids_of("/contract/beta") == beta
            new = index.manifest.chunk_ids_of("/contract/alpha")
            assert len(new - old) == committed.added and len(old - new) == committed.removed

    def test_a_removed_source_is_gone_everywhere(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        self.write(index_location, config, source(config, "alpha", paragraphs("alpha")), source(config, "beta", paragraphs("beta")))
        with Index.open(index_location, config, writable=True) as index, IndexWriter(index) as writer:
            removed = writer.remove("/contract/alpha")
        with Index.open(index_location, config) as index:
            ids = assert_consistent(index)
            assert removed > 0 and index.manifest.source("/contract/alpha") is None
            assert {c.source for c in index.manifest.chunks_by_id(sorted(ids))} == {"/contract/beta"}

    def test_an_interrupted_write_is_made_whole_by_the_next_writer(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        self.write(index_location, config, source(config, "alpha", paragraphs("alpha")))
        half = source(config, "beta", paragraphs("beta"))
        with Index.open(index_location, config, writable=True) as index:
            writer = IndexWriter(index)
            writer.start()
            index.manifest.begin_source_write(half.record.path, [c.chunk_id for c in half.chunks])
            index.vectors.upsert(
                [c.chunk_id for c in half.chunks],
                index.embedder.embed([c.text for c in half.chunks]),
                [{"source": half.record.path} for _ in half.chunks],
            )
            writer.close()  # stopped here: vectors written, nothing committed
        with Index.open(index_location, config) as index:
            assert index.manifest.source("/contract/beta") is None  # readers never see a half-written source
        self.write(index_location, config)  # the next writer, with nothing to write
        with Index.open(index_location, config) as index:
            ids = assert_consistent(index)
            assert {c.source for c in index.manifest.chunks_by_id(sorted(ids))} == {"/contract/alpha"}

    def test_one_writer_at_a_time(self, index_location: Location, index_config: RagConfig) -> None:
        with Index.open(index_location, index_config, writable=True):
            with pytest.raises(RagError) as busy:
                Index.open(index_location, index_config, writable=True)
        assert "writing" in busy.value.message and busy.value.hint

    def test_a_read_snapshot_sees_one_committed_state_and_sync_catches_up(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        self.write(index_location, config, source(config, "alpha", paragraphs("alpha")))
        with Index.open(index_location, config) as reader:
            before = reader.manifest.generation()
            reader.begin_read()
            self.write(index_location, config, source(config, "beta", paragraphs("beta")))
            assert reader.manifest.generation() == before
            assert reader.manifest.source("/contract/beta") is None
            reader.end_read()
            assert reader.sync()  # the generation moved on
            assert reader.manifest.generation() > before
            assert_consistent(reader)  # the vector handle and BM25 followed

    def test_groups_and_tags_are_kept_per_document_and_source(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        self.write(index_location, config, source(config, "open", paragraphs("open")), source(config, "hr", paragraphs("hr"), groups=("hr",)))
        with Index.open(index_location, config, writable=True) as index:
            groups = {chunk_id: json.loads(g) for chunk_id, g in index.manifest.chunk_groups()}
            hr = index.manifest.chunk_ids_of("/contract/hr")
            assert all(groups[c] == ["hr"] for c in hr) and all(groups[c] == [] for c in set(groups) - hr)
            generation = index.manifest.generation()
            with IndexWriter(index) as writer:
                writer.set_tags("/contract/open", ["policies"])
            record = index.manifest.source("/contract/open")
            assert record is not None and record.tag_list == ["policies"]
            assert index.manifest.generation() > generation

    def test_dense_search_finds_the_nearest_chunk(self, index_location: Location, index_config: RagConfig) -> None:
        config = index_config
        self.write(index_location, config, source(config, "alpha", paragraphs("alpha")), source(config, "beta", paragraphs("beta")))
        with Index.open(index_location, config) as index:
            (chunk,) = index.manifest.chunks_by_id([sorted(index.manifest.chunk_ids_of("/contract/beta"))[0]])
            vector = index.query_embedder.embed([chunk.text])[0]
            hits = index.vectors.query(np.asarray(vector), k=3)
            assert hits[0][0] == chunk.chunk_id and hits[0][1] == pytest.approx(1.0, abs=1e-3)

    def test_api_keys_are_created_authenticated_and_revoked(self, index_location: Location, index_config: RagConfig) -> None:
        self.write(index_location, index_config, source(index_config, "alpha", paragraphs("alpha")))
        with Index.open(index_location, index_config) as index:
            keys = index.backend.key_store()
        record, secret = keys.create("alice", ("staff",))
        assert secret not in json.dumps(record.to_json())
        found = keys.authenticate(secret)
        assert found is not None and found.name == "alice" and found.groups == ("staff",) and not found.admin
        assert keys.authenticate(secret + "x") is None
        assert keys.revoke("alice") and keys.authenticate(secret) is None
