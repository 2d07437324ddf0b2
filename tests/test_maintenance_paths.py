"""What keeps a one-file re-ingest of a large index short (docs/ingest-speed.md): the chunks still to count are
found through an index, bm25s loads in the background, and the reader's child tokenises a changed file's chunks
for BM25; same results either way."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from rag.config import BM25Config
from rag.index.bm25 import Segment, Tokenizer, preload_tokenizer
from rag.index.manifest import Manifest
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from tests.fake_openai import FakeOpenAI
from tests.helpers import fake_endpoint_config


def test_the_chunks_still_to_count_are_found_through_an_index(tmp_path: Path) -> None:
    """A writer asks at every run; without the partial index that reads every chunk (58 ms at 100,000)."""
    Manifest(tmp_path / "manifest.sqlite").close()
    db = sqlite3.connect(tmp_path / "manifest.sqlite")
    plan = db.execute("EXPLAIN QUERY PLAN SELECT chunk_id, text FROM chunks WHERE tokens IS NULL LIMIT 10").fetchall()
    db.close()
    assert any("chunks_without_tokens" in row[-1] for row in plan), plan


def test_preloaded_bm25s_tokenises_as_a_foreground_import(monkeypatch: pytest.MonkeyPatch) -> None:
    config = BM25Config()
    texts = ["Running runners ran past the running water.", "The quick brown fox."]
    expected = Tokenizer(config).ids(texts)
    for name in [m for m in sys.modules if m == "bm25s" or m.startswith("bm25s.")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    preload_tokenizer(config).join(timeout=60)
    assert "bm25s" in sys.modules
    assert Tokenizer(config).ids(texts) == expected


def test_a_failed_preload_leaves_the_error_to_the_refresh(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "bm25s", None)  # `import bm25s` now raises ImportError, as when it is missing
    preload_tokenizer(BM25Config()).join(timeout=60)  # no exception out of the thread, nothing printed
    assert capsys.readouterr().err == ""
    with pytest.raises(ImportError, match="bm25s"):
        Tokenizer(BM25Config()).ids(["some text"])


def test_a_segment_from_the_readers_tokens_has_the_postings_of_one_built_from_the_texts() -> None:
    """The reader's child tokenises a file's chunks; the refresh builds the segment from those tokens."""
    config = BM25Config()  # English stopwords and stemmer: what the child applies must be what `build` applies
    texts = ["Running runners ran past the running water.", "", "The quick brown fox; the fox runs.", "ð water of mice"]
    ids = ["a", "b", "c", "d"]
    built = Segment.build(ids, texts, Tokenizer(config))
    given = Segment.from_tokens(ids, Tokenizer(config).token_lists(texts))
    assert set(given.terms) == set(built.terms) and given.lengths.tolist() == built.lengths.tolist()
    for term in built.terms:
        docs, freqs = built.postings(term)  # type: ignore[misc]
        given_docs, given_freqs = given.postings(term)  # type: ignore[misc]
        assert given_docs.tolist() == docs.tolist() and given_freqs.tolist() == freqs.tolist()


def _ingest_change_and_compare(tmp_path: Path, *extra: str) -> None:
    """Ingest a corpus, change one file, re-ingest with tokenising forbidden in this process, and check BM25
    against a fresh index of the changed corpus."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in range(12):
        (corpus / f"f{number}.txt").write_text(f"Paragraph {number} about protein binding and insulin dose.\n\nMice run {number} times.\n")
    with FakeOpenAI() as server:
        config = fake_endpoint_config(server.base_url, *extra)
        with Index.open(tmp_path / "index", config, writable=True) as index:
            Ingestor(index).ingest([str(corpus)])
        (corpus / "f4.txt").write_text("Running receptors signal growth.\n\nThe tumour pathway of mice.\n")
        with Index.open(tmp_path / "index", config, writable=True) as index:
            assert Ingestor(index).ingest([str(corpus)]).changed == 1
        with Index.open(tmp_path / "fresh", config, writable=True) as fresh:
            Ingestor(fresh).ingest([str(corpus)])
        with Index.open(tmp_path / "index", config) as index, Index.open(tmp_path / "fresh", config) as fresh:
            assert index.bm25().chunk_ids == fresh.bm25().chunk_ids
            for query in ["running receptor", "mice protein", "tumour pathway insulin"]:
                assert index.bm25().search(query, 10) == fresh.bm25().search(query, 10)


def test_a_changed_file_is_tokenised_by_the_reader_not_by_the_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = Tokenizer.ids
    monkeypatch.setattr(Tokenizer, "ids", lambda self, texts: (calls.append(len(texts)), original(self, texts))[1])
    _ingest_change_and_compare(tmp_path)
    assert calls == [12, 12]  # this process tokenised the two full builds (a chunk a file), not the changed file


def test_a_reader_that_cannot_tokenise_leaves_it_to_the_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process reading (ingest.limits.isolate=false) with bm25s failing there: the file is still ingested."""
    monkeypatch.setattr(Tokenizer, "token_lists", lambda self, texts: (_ for _ in ()).throw(MemoryError()))
    _ingest_change_and_compare(tmp_path, "ingest.limits.isolate=false")
