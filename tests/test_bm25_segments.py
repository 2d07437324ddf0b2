"""Segmented BM25 (issue 19): updating by segments must rank and score exactly as a full bm25s rebuild does,
a folder index must write only what changed, and segments must be merged before they pile up."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rag.config import BM25Config
from rag.index import bm25 as bm25_module
from rag.index.bm25 import BM25Index, Tokenizer, catch_up
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from tests.helpers import fake_endpoint_config
from tests.fake_openai import FakeOpenAI

WORDS = ["protein", "cells", "running", "runs", "gene", "expression", "the", "of", "mice", "tumour", "growth",
         "factor", "signal", "pathway", "ð", "and", "binding", "receptor", "insulin", "dose"]
QUERIES = ["protein cells", "running gene gene expression", "tumour growth factor signal", "ð the", "insulin dose of mice"]


def _corpus(n: int, seed: int = 1) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    return [f"c{i:04d}" for i in range(n)], [" ".join(rng.choices(WORDS, k=rng.randint(0, 30))) for _ in range(n)]


def _bm25s_reference(config: BM25Config, ids: list[str], texts: list[str], query: str, k: int) -> list[tuple[str, float]]:
    """What the old design did: one bm25s index over exactly these chunks, top k by score then chunk id."""
    import bm25s

    tokenizer = Tokenizer(config)
    reference = bm25s.BM25(k1=config.k1, b=config.b, method="lucene")
    reference.index(bm25s.tokenize(texts, stopwords=config.stopwords or [], stemmer=tokenizer._stemmer(), show_progress=False), show_progress=False)
    scores = reference.get_scores_from_ids(reference.get_tokens_ids(tokenizer.tokens(query)))
    hits = [(ids[i], float(scores[i])) for i in np.flatnonzero(scores > 0)]
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))[:k]


def test_an_index_updated_by_segments_scores_exactly_like_a_full_bm25s_build() -> None:
    config = BM25Config()
    ids, texts = _corpus(300)
    index = BM25Index(config)
    index.build(ids[:200], texts[:200])
    index = index.updated(ids[200:260], texts[200:260], removed=ids[10:40])
    index = index.updated(ids[260:], texts[260:], removed=ids[100:105] + ids[210:215])
    kept = sorted(set(ids) - set(ids[10:40]) - set(ids[100:105]) - set(ids[210:215]))
    assert index.chunk_ids == kept and len(index.segments) == 3
    for query in QUERIES:
        expected = _bm25s_reference(config, kept, [texts[ids.index(c)] for c in kept], query, 25)
        assert index.search(query, 25) == expected  # same ids, same order, bit-identical float32 scores
    allowed = set(kept[::3])
    assert index.search("protein cells", 10, allowed=allowed) == [h for h in index.search("protein cells", 400) if h[0] in allowed][:10]


def test_catch_up_tokenises_only_new_chunks_and_merges_many_small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    class Catalog:  # the two reads catch_up makes, over an in-memory chunk table
        def __init__(self) -> None:
            self.texts: dict[str, str] = {}

        def all_chunk_ids(self) -> set[str]:
            return set(self.texts)

        def chunks_by_id(self, chunk_ids: list[str]) -> list[object]:
            return [type("C", (), {"chunk_id": c, "text": self.texts[c]}) for c in chunk_ids]

        def chunk_texts(self) -> tuple[list[str], list[str]]:
            ordered = sorted(self.texts)
            return ordered, [self.texts[c] for c in ordered]

    config = BM25Config()
    ids, texts = _corpus(1000, seed=7)
    catalog = Catalog()
    catalog.texts = dict(zip(ids[:900], texts[:900]))
    index = catch_up(None, catalog, config)  # type: ignore[arg-type]
    tokenised: list[int] = []
    original = Tokenizer.ids
    monkeypatch.setattr(Tokenizer, "ids", lambda self, batch: (tokenised.append(len(batch)), original(self, batch))[1])
    for step in range(12):  # twelve small changes: one chunk replaced, one added each time
        del catalog.texts[ids[step]]
        catalog.texts[ids[900 + step]] = texts[900 + step]
        index = catch_up(index, catalog, config)  # type: ignore[arg-type]
        assert len(index.segments) <= bm25_module.MAX_SEGMENTS + 1
    assert tokenised[:bm25_module.MAX_SEGMENTS - 1] == [1] * (bm25_module.MAX_SEGMENTS - 1)  # only the new chunk
    assert max(tokenised) < 20  # never the whole index: small segments were merged among themselves
    assert index.chunk_ids == sorted(catalog.texts)
    kept = sorted(catalog.texts)
    for query in QUERIES:
        assert index.search(query, 20) == _bm25s_reference(config, kept, [catalog.texts[c] for c in kept], query, 20)


def test_a_folder_index_saves_only_the_changed_segment_and_ranks_like_a_fresh_one(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    ids, texts = _corpus(200, seed=3)
    for number in range(20):  # one change and one removal stay under MAX_CHANGED_SHARE: no full rebuild
        (corpus / f"f{number}.txt").write_text("\n\n".join(texts[number * 10 : number * 10 + 10]) + "\n")
    with FakeOpenAI() as server:
        config = fake_endpoint_config(server.base_url)
        with Index.open(tmp_path / "index", config, writable=True) as index:
            Ingestor(index).ingest([str(corpus)])
        segments_before = {p.name for p in (tmp_path / "index" / "bm25").iterdir() if p.is_dir()}
        (corpus / "f2.txt").write_text("insulin dose in mice\n\nthe receptor binding pathway\n")
        (corpus / "f3.txt").unlink()
        with Index.open(tmp_path / "index", config, writable=True) as index:
            report = Ingestor(index).ingest([str(corpus)])
            assert report.changed == 1 and report.removed == 1
        segments_after = {p.name for p in (tmp_path / "index" / "bm25").iterdir() if p.is_dir()}
        assert segments_before < segments_after and len(segments_after - segments_before) == 1
        with Index.open(tmp_path / "fresh", config, writable=True) as fresh:
            Ingestor(fresh).ingest([str(corpus)])
        with Index.open(tmp_path / "index", config) as index, Index.open(tmp_path / "fresh", config) as fresh:
            assert index.bm25().chunk_ids == fresh.bm25().chunk_ids
            for query in QUERIES:
                assert index.bm25().search(query, 10) == fresh.bm25().search(query, 10)


def test_statistics_kept_between_queries_belong_to_the_index_they_were_computed_for() -> None:
    """An index computes its chunk count and length normalisation once, for all its queries: an index updated
    from it (other average length, dead chunks) and the same object rebuilt must not score with stale ones."""
    config = BM25Config()
    ids, texts = _corpus(240, seed=3)
    first = BM25Index(config)
    first.build(ids[:160], texts[:160])
    assert first.search("protein cells", 20) == _bm25s_reference(config, ids[:160], texts[:160], "protein cells", 20)
    second = first.updated(ids[160:], texts[160:], removed=ids[:50])
    kept = ids[50:]
    for query in QUERIES:
        assert second.search(query, 20) == _bm25s_reference(config, kept, texts[50:], query, 20)
        assert first.search(query, 20) == _bm25s_reference(config, ids[:160], texts[:160], query, 20)
    first.build(ids[100:], texts[100:])
    assert first.search("tumour growth factor signal", 20) == _bm25s_reference(config, ids[100:], texts[100:], "tumour growth factor signal", 20)
