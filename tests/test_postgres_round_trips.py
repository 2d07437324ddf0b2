"""Round trips to PostgreSQL per `retrieve`, counted on the wire (tests/pg_round_trips.py) on a real server.

A request reads its passages, their neighbours and their documents in a few batched reads (docs/postgres.md,
"Round trips per request"); these tests fail if the count creeps back up, if the batched reads assemble other
passages than the folder backend's reads of the same index, or if a reader gets a chunk it may not see.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.core.access import Access
from rag.core.tokens import count_tokens
from rag.index.postgres.connections import close_pool
from rag.index.store import Index
from rag.pipeline import RagPipeline
from rag.retrieve.context import ContextAssembler
from rag.testing import IndexBackendContract
from rag.testing.index_backend import contract_config, paragraphs, source
from tests.pg_round_trips import RoundTripCounter

# Steady state, inside the read snapshot `rag serve` opens per request: the snapshot with every meta value, the
# vector search, the fused chunks, the neighbours of each context (the shown one and the offline answerer's wider
# one), the end of the snapshot. (Main at a80cb0a: 27-29 on this index.)
MOST_ROUND_TRIPS = 6
# Before that: documents not read yet add a read per context, and psycopg prepares a statement on its 6th run
# (one round trip more, once per statement and connection).
MOST_ROUND_TRIPS_COLD = 12
TOPICS = ["vacation", "salary", "laptop", "security", "travel", "parking"]
QUESTIONS = ["vacation3word4 salary", "laptop2word1 travel5word3", "parking1word1 security2word3", "salary5word7 budget"]


def _writes(config):  # type: ignore[no-untyped-def]
    """Six sources of eight paragraphs; every second one readable by group `hr` only."""
    return [source(config, topic, paragraphs(topic, 8), groups=("hr",) if n % 2 else ()) for n, topic in enumerate(TOPICS)]


@pytest.fixture
def counted(postgres_url: str) -> Iterator[tuple[RagPipeline, RoundTripCounter]]:
    config = contract_config()
    IndexBackendContract().write(postgres_url, config, *_writes(config))
    counter = RoundTripCounter(postgres_url)
    pipeline = RagPipeline(Index.open(counter.url, config), config)
    try:
        yield pipeline, counter
    finally:
        pipeline.close()
        close_pool(counter.url)
        counter.close()


def _retrieve(pipeline: RagPipeline, question: str, access: Access):  # type: ignore[no-untyped-def]
    """One request as `rag serve` makes it: inside a read snapshot."""
    pipeline.index.begin_read()
    try:
        return pipeline.retrieve(question, access=access)
    finally:
        pipeline.index.end_read()


@pytest.mark.parametrize("access", [Access.unrestricted(), Access.of_groups(())], ids=["admin", "public-only"])
def test_a_retrieve_makes_a_bounded_number_of_round_trips(counted: tuple[RagPipeline, RoundTripCounter], access: Access) -> None:
    pipeline, counter = counted
    _retrieve(pipeline, "warm-up question", access)  # the first builds BM25 and the permissions snapshot
    for question in QUESTIONS * 2:
        counter.reset()
        retrieved = _retrieve(pipeline, question, access)
        assert retrieved.passages and retrieved.answer_passages
        assert counter.count <= MOST_ROUND_TRIPS_COLD, (question, counter.count)
    for question in QUESTIONS:
        counter.reset()
        _retrieve(pipeline, question, access)
        assert 0 < counter.count <= MOST_ROUND_TRIPS, (question, counter.count)


def test_a_reader_never_gets_a_chunk_outside_its_groups(counted: tuple[RagPipeline, RoundTripCounter]) -> None:
    pipeline, _ = counted
    with Index.open(pipeline.index.backend.url, pipeline.config) as index:  # type: ignore[attr-defined]
        hidden = {c for path in ("/contract/salary", "/contract/security", "/contract/parking") for c in index.manifest.chunk_ids_of(path)}
    assert hidden
    seen_by_staff: set[str] = set()
    for question in [*QUESTIONS, "salary1word2 security3word4 parking5word6"]:
        retrieved = _retrieve(pipeline, question, Access.of_groups(()))
        given = [s.chunk.chunk_id for s in retrieved.ranked]
        given += [c for p in [*retrieved.passages, *(retrieved.answer_passages or [])] for c in p.chunk_ids]
        assert given and not set(given) & hidden, question
        assert not any(p.source_key.endswith(("salary", "security", "parking")) for p in retrieved.passages)
        staff = _retrieve(pipeline, question, Access.of_groups(("hr",)))
        seen_by_staff |= {c for p in staff.passages for c in p.chunk_ids}
    assert seen_by_staff & hidden  # the same questions, asked by a member of `hr`, do reach those documents


def test_batched_reads_assemble_what_the_folder_backend_assembles(counted: tuple[RagPipeline, RoundTripCounter], tmp_path: Path) -> None:
    """The same ranked chunks, assembled from the PostgreSQL catalog (batched reads) and from a folder index of the
    same writes (a read per document), give the same passages: texts, spans, neighbours, order."""
    pipeline, _ = counted
    config = pipeline.config
    IndexBackendContract().write(tmp_path / "folder", config, *_writes(config))
    contexts = [config.context, pipeline.answer_assembler.config]
    assert any(context.neighbours for context in contexts)
    with Index.open(tmp_path / "folder", config) as folder:
        for access in (Access.unrestricted(), Access.of_groups(())):
            for question in QUESTIONS:
                found = pipeline.searcher.search([question], limit=20, access=access)
                for context in contexts:
                    batched = ContextAssembler(pipeline.index.manifest, context, count_tokens).assemble(found.chunks, found.visible)[0]
                    one_by_one = ContextAssembler(folder.manifest, context, count_tokens).assemble(found.chunks, found.visible)[0]
                    assert batched and batched == one_by_one, question
