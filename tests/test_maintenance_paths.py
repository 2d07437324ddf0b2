"""What keeps a one-file re-ingest of a large index short (docs/ingest-speed.md): the chunks still to count are
found through an index, and bm25s loads in the background while a changed file is read; same results either way."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from rag.config import BM25Config
from rag.index.bm25 import Tokenizer, preload_tokenizer
from rag.index.manifest import Manifest


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
