"""What keeps a one-file re-ingest of a large index short (docs/ingest-speed.md): the chunks still to count are
found through an index, and a changed file's chunks are tokenised for BM25 by the reader's child, not by this
process's refresh; same results either way."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from rag.config import BM25Config, load_config
from rag.index import bm25
from rag.index.bm25 import BM25Index, Tokenizer, remember_tokens
from rag.index.manifest import Manifest
from rag.index.store import Index
from rag.ingest.loaders import loader_factory
from rag.ingest.pipeline import Ingestor
from rag.ingest.worker import ReadTask, read_file
from tests.helpers import assert_index_consistent
from tests.test_bm25_segments import QUERIES, _corpus


def test_the_chunks_still_to_count_are_found_through_an_index(tmp_path: Path) -> None:
    """A writer asks at every run; without the partial index that reads every chunk (58 ms at 100,000)."""
    Manifest(tmp_path / "manifest.sqlite").close()
    db = sqlite3.connect(tmp_path / "manifest.sqlite")
    plan = db.execute("EXPLAIN QUERY PLAN SELECT chunk_id, text FROM chunks WHERE tokens IS NULL LIMIT 10").fetchall()
    db.close()
    assert any("chunks_without_tokens" in row[-1] for row in plan), plan


def test_tokens_remembered_from_another_process_index_exactly_like_tokenising_here() -> None:
    config = BM25Config()
    ids, texts = _corpus(120)
    reference = BM25Index(config)
    reference.build(ids[:100], texts[:100])
    reference = reference.updated(ids[100:], texts[100:], removed=ids[:5])
    given = BM25Index(config)
    given.build(ids[:100], texts[:100])
    remember_tokens(config, texts[100:], Tokenizer(config).token_lists(texts[100:]))  # as the reader's child makes them
    given = given.updated(ids[100:], texts[100:], removed=ids[:5])
    for query in QUERIES:
        assert given.search(query, 25) == reference.search(query, 25)  # same ids, same bit-identical scores


def test_remembered_tokens_are_taken_once_whole_and_only_under_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config, other = BM25Config(), BM25Config(stemmer=None)
    texts = ["Running runners ran past the running water.", "The quick brown fox."]
    remember_tokens(config, texts, Tokenizer(config).token_lists(texts))
    monkeypatch.setattr(bm25, "_bm25s", _no_bm25s)
    with pytest.raises(AssertionError, match="bm25s"):
        Tokenizer(other).ids(texts)  # other settings: these tokens are not theirs
    with pytest.raises(AssertionError, match="bm25s"):
        Tokenizer(config).ids([*texts, "a text nobody tokenised"])  # all or nothing
    rows, vocab = Tokenizer(config).ids(texts)
    assert [[token for token in vocab if vocab[token] == i][0] for i in rows[0]] == ["run", "runner", "ran", "past", "run", "water"]
    with pytest.raises(AssertionError, match="bm25s"):
        Tokenizer(config).ids(texts)  # taken: a second refresh tokenises itself


def _no_bm25s() -> None:
    raise AssertionError("bm25s imported in this process")


def test_a_changed_file_is_tokenised_for_bm25_by_the_reader_not_by_the_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's child tokenises a changed file's chunks; this process's refresh takes the tokens and never
    calls bm25s (the child, another process, is not patched), and the index ranks as a fresh build does."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for number in range(10):  # one changed file is a small share: the refresh adds a segment (no full rebuild)
        (folder / f"note{number}.txt").write_text(f"Note {number}: the quarterly report lists wombats and otters.\n")
    config = load_config()
    with Index.open(tmp_path / "index", config, writable=True) as index:
        Ingestor(index).ingest([str(folder)])
    (folder / "note1.txt").write_text("Note 1 changed: the platypus census doubled this year.\n")
    monkeypatch.setattr(bm25, "_bm25s", _no_bm25s)
    with Index.open(tmp_path / "index", config, writable=True) as index:
        report = Ingestor(index).ingest([str(folder)])
        assert (report.changed, report.unchanged) == (1, 9)
    monkeypatch.undo()  # queries tokenise with bm25s
    with Index.open(tmp_path / "index", config) as index:
        assert_index_consistent(index)
        after = index.bm25().search("platypus census", 3)
    with Index.open(tmp_path / "fresh", config, writable=True) as fresh:
        Ingestor(fresh).ingest([str(folder)])
        assert [score for _, score in after] == [score for _, score in fresh.bm25().search("platypus census", 3)]
    assert len(after) == 1


def test_an_ingest_that_fails_before_its_refresh_leaves_no_tokens_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's tokens wait in this process for the refresh at the end of the run; a run that fails first
    must not leave them there (a server would keep them until an ingest took them)."""
    from rag.ingest import pipeline
    from rag.index.writer import IndexWriter

    (tmp_path / "note.txt").write_text("The platypus census doubled this year.\n")
    remembered: list[str] = []

    def remember(config: BM25Config, texts: list[str], tokens: list[list[str]]) -> None:
        remembered.extend(texts)
        remember_tokens(config, texts, tokens)

    def fail(self: IndexWriter, write: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(pipeline, "remember_tokens", remember)
    monkeypatch.setattr(IndexWriter, "stage", fail)
    with Index.open(tmp_path / "index", load_config(), writable=True) as index, pytest.raises(RuntimeError, match="disk is full"):
        Ingestor(index).ingest([str(tmp_path / "note.txt")])
    assert remembered  # the reader's child did tokenise the file
    monkeypatch.setattr(bm25, "_bm25s", _no_bm25s)
    with pytest.raises(AssertionError, match="bm25s"):
        Tokenizer(BM25Config()).ids(remembered)  # nothing left to take: tokenised afresh


def test_the_reader_tokenises_its_chunks_when_asked_and_a_failure_there_fails_nothing(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("Running runners ran past the running water.\n\nThe quick brown fox.\n")
    config = load_config()
    factory, section = loader_factory("text", config.ingest)
    task = ReadTask(path=str(path), doc_id="note.txt", source=str(path), file_type="text", factory=factory, section=section,
                    ingest=config.ingest, chunking=config.chunking, fingerprint=config.indexing_fingerprint("text"), bm25=config.bm25)
    read = read_file(task)
    assert read.tokens == Tokenizer(config.bm25).token_lists([c.text for c in read.chunks]) and read.tokens
    unknown_stemmer = read_file(replace(task, bm25=BM25Config(stemmer="no-such-language")))
    assert unknown_stemmer.tokens is None and [c.text for c in unknown_stemmer.chunks] == [c.text for c in read.chunks]
    assert read_file(replace(task, bm25=None)).tokens is None
