"""Text without indexable words (issue 21): BM25 has nothing to match, dense search still answers.

Documents such as "ð" or "the and of" yield no token after stopwords and stemming, which bm25s cannot
index. An index (or the part of it a restricted reader may see) made only of such text must give no
BM25 hits and keep returning dense results, for ingest, removal and every search.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import BM25Config
from rag.index.bm25 import BM25Index, Segment, State, assemble
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.retrieve.access import Access
from rag.retrieve.search import HybridSearcher
from tests.fake_openai import FakeOpenAI
from tests.helpers import fake_endpoint_config

NO_WORDS = ["ð", "the and of", "!!! ???"]


def test_bm25_over_text_without_words_matches_nothing_and_survives_save_and_load(tmp_path: Path) -> None:
    index = BM25Index(BM25Config())
    index.build(["a", "b", "c"], NO_WORDS)
    assert index.search("ð the", 10) == [] and index.search("anything", 10, allowed={"a"}) == []
    index.save(tmp_path, ["segment"], tmp_path / "version.json", catalog_generation=1)
    state = State.read(tmp_path / "version.json")
    loaded = assemble(BM25Config(), [Segment.load(tmp_path / name) for name in state.names], state.dead)
    assert loaded.chunk_ids == ["a", "b", "c"] and loaded.search("ð", 10) == []


def test_bm25_with_some_wordless_text_still_ranks_the_rest(tmp_path: Path) -> None:
    index = BM25Index(BM25Config())
    index.build(["a", "b"], ["ð", "vacation days for new employees"])
    assert [chunk_id for chunk_id, _ in index.search("vacation", 5)] == ["b"]


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_an_index_without_lexical_vocabulary_ingests_removes_and_answers_densely(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    _write_jsonl(tmp_path / "corpus/odd.jsonl", [{"_id": f"o{i}", "text": text} for i, text in enumerate(NO_WORDS)])
    with FakeOpenAI() as server:
        config = fake_endpoint_config(server.base_url)
        with Index.open(tmp_path / "index", config, writable=True) as index:
            report = Ingestor(index).ingest([str(tmp_path / "corpus")])
            assert report.new == 1 and not report.failed
        with Index.open(tmp_path / "index", config) as index:
            result = HybridSearcher(index, config.retrieval).search(["ð"], access=Access.unrestricted())
            assert result.chunks and result.chunks[0].chunk.text == "ð"
            assert all("bm25" not in s.scores for s in result.chunks)
            assert result.trace.per_query[0].bm25 == []
        _write_jsonl(tmp_path / "corpus/odd.jsonl", [{"_id": "o0", "text": "ð"}])
        with Index.open(tmp_path / "index", config, writable=True) as index:
            assert not Ingestor(index).ingest([str(tmp_path / "corpus")]).failed  # a rewrite rebuilds BM25 again
            assert not Ingestor(index).remove([str(tmp_path / "corpus/odd.jsonl")]).failed


def test_a_reader_whose_visible_chunks_have_no_words_gets_dense_results(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    records = [{"_id": "w", "text": "ð", "groups": ["odd"]}, {"_id": "x", "text": "the and of", "groups": ["odd"]},
               {"_id": "s", "text": "Salary bands are reviewed every March.", "groups": ["hr"]}]
    _write_jsonl(tmp_path / "corpus/records.jsonl", records)
    with FakeOpenAI() as server:
        config = fake_endpoint_config(server.base_url)
        with Index.open(tmp_path / "index", config, writable=True) as index:
            assert not Ingestor(index).ingest([str(tmp_path / "corpus")]).failed
        with Index.open(tmp_path / "index", config) as index:
            searcher = HybridSearcher(index, config.retrieval)
            for query in ("ð", "salary bands"):
                result = searcher.search([query], access=Access.of_groups(("odd",)))
                assert {s.chunk.doc_id for s in result.chunks} <= {"w", "x"} and result.chunks
                assert result.trace.per_query[0].bm25 == []
            everyone = searcher.search(["salary bands"], access=Access.unrestricted())
            assert everyone.chunks[0].chunk.doc_id == "s" and "bm25" in everyone.chunks[0].scores


@pytest.mark.parametrize("texts", [[], ["ð"]])
def test_empty_or_wordless_index_returns_no_hits_for_any_query(texts: list[str]) -> None:
    index = BM25Index(BM25Config())
    index.build([f"c{i}" for i in range(len(texts))], texts)
    assert index.search("", 5) == [] and index.search("words", 5) == []
