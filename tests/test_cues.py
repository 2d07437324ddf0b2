"""Name and number cues: what is taken from a question, and how the fused top is re-scored by them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.retrieve.access import Access
from rag.retrieve.cues import CUE_DEPTH, boost_by_cues, query_cues
from rag.retrieve.search import HybridSearcher
from tests.fake_openai import FakeOpenAI
from tests.helpers import fake_endpoint_config


def texts_of(table: dict[str, str]):
    return lambda ids: {i: table[i] for i in ids if i in table}


def test_cues_are_multi_word_names_and_numbers_without_question_words() -> None:
    assert query_cues("How many yards did Kris Brown kick in the 2nd quarter of 2010?") == ["Kris Brown", "2010"]
    assert query_cues("Which team did the New York Giants beat by 3.5 points, 3.5 or 7?") == ["New York Giants", "3.5", "7"]


def test_a_single_capitalised_word_or_a_lower_case_question_has_no_cues() -> None:
    assert query_cues("Who is Brady?") == []
    assert query_cues("what does the brotherhood decide?") == []
    assert query_cues("What Is") == []  # only question words: no name left


def test_digits_inside_words_are_not_numbers() -> None:
    assert query_cues("Was the 1990s Q3 report late?") == []


def test_no_cues_zero_weight_or_nothing_fused_leave_the_ranking_and_read_no_text() -> None:
    fused = [("b", 0.9), ("a", 0.8)]

    def unreadable(ids: list[str]) -> dict[str, str]:
        raise AssertionError("texts read without need")

    assert boost_by_cues(fused, [], unreadable, 0.2) == fused
    assert boost_by_cues(fused, ["Kris Brown"], unreadable, 0.0) == fused
    assert boost_by_cues([], ["Kris Brown"], unreadable, 0.2) == []


def test_a_chunk_with_the_cues_overtakes_a_close_one_without_them() -> None:
    fused = [("browns", 0.90), ("kris", 0.85), ("other", 0.10)]
    texts = {"browns": "The Cleveland Browns kicked 3 field goals.", "kris": "Kris Brown kicked a 40-yard field goal.", "other": "Kris Brown"}
    boosted = boost_by_cues(fused, ["Kris Brown", "40"], texts_of(texts), 0.2)
    assert [item for item, _ in boosted] == ["kris", "browns", "other"]
    assert dict(boosted) == pytest.approx({"kris": 0.85 + 0.2, "browns": 0.90, "other": 0.10 + 0.2 * 0.5})  # "40-yard" holds 40


def test_matches_are_whole_words_and_case_sensitive() -> None:
    fused = [("a", 0.5), ("b", 0.5), ("c", 0.5)]
    texts = {"a": "gained 100 yards", "b": "gained 10 yards", "c": "the new york giants"}
    boosted = dict(boost_by_cues(fused, ["10", "New York"], texts_of(texts), 0.2))
    assert boosted == pytest.approx({"a": 0.5, "b": 0.6, "c": 0.5})


def test_ties_after_boosting_are_broken_by_id() -> None:
    fused = [("z", 0.7), ("y", 0.6)]
    boosted = boost_by_cues(fused, ["Ann Lee"], texts_of({"z": "nobody", "y": "Ann Lee"}), 0.1)
    assert [item for item, _ in boosted] == ["y", "z"]
    assert boosted[0][1] == pytest.approx(boosted[1][1])


def test_only_the_head_is_rescored_and_the_tail_follows_unchanged() -> None:
    fused = [(f"c{n:03d}", 1.0 - n / 100) for n in range(CUE_DEPTH + 5)]
    texts = {item: "Ann Lee" for item, _ in fused}  # every chunk holds the cue, also those past the depth
    boosted = boost_by_cues(fused, ["Ann Lee"], texts_of(texts), 0.2)
    assert [item for item, _ in boosted] == [item for item, _ in fused]
    assert boosted[CUE_DEPTH:] == fused[CUE_DEPTH:]
    assert boosted[0][1] == pytest.approx(1.2)


def test_a_chunk_whose_text_is_missing_gets_no_boost() -> None:
    boosted = boost_by_cues([("gone", 0.5), ("here", 0.45)], ["Ann Lee"], texts_of({"here": "Ann Lee"}), 0.1)
    assert boosted == [("here", pytest.approx(0.55)), ("gone", 0.5)]


def test_hybrid_search_adds_the_cue_boost_to_each_fused_score(tmp_path: Path) -> None:
    """Through the searcher: every returned chunk's fused score rises by weight x its share of the cues."""
    records = [
        {"_id": "kris", "text": "Kris Brown kicked a 40-yard field goal in the 4th quarter."},
        {"_id": "browns", "text": "The Cleveland Browns kicked three field goals; Brown ran for 40 yards."},
        {"_id": "other", "text": "A field goal decided the game late in the 4th quarter."},
    ]
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/games.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    question = "Was the field goal Kris Brown kicked 40 yards long?"
    with FakeOpenAI() as server:
        config = fake_endpoint_config(server.base_url)
        with Index.open(tmp_path / "index", config, writable=True) as index:
            Ingestor(index).ingest([str(tmp_path / "corpus")])
        by_run: dict[tuple[str, float], dict[str, float]] = {}
        for fusion, weight in (("convex", 0.0), ("convex", 0.2), ("rrf", 0.0), ("rrf", 0.2)):
            retrieval = config.retrieval.model_copy(update={"cue_weight": weight, "fusion": fusion})
            with Index.open(tmp_path / "index", config) as index:
                result = HybridSearcher(index, retrieval).search([question], access=Access.unrestricted())
            by_run[fusion, weight] = {s.chunk.text: s.scores["fused"] for s in result.chunks}
    assert by_run["rrf", 0.2] == by_run["rrf", 0.0]  # RRF's scale (about 1/60) is not boosted
    scores = {weight: by_run["convex", weight] for weight in (0.0, 0.2)}
    assert query_cues(question) == ["Kris Brown", "40"]  # "4th" is no number
    share = {records[0]["text"]: 1.0, records[1]["text"]: 0.5, records[2]["text"]: 0.0}
    assert set(scores[0.2]) == set(share)
    for text, part in share.items():
        assert scores[0.2][text] == pytest.approx(scores[0.0][text] + 0.2 * part)
