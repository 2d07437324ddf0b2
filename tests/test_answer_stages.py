"""eval/answer_stages.py: where an answerable question is lost, and the per-sentence features the ranking fit reads;
eval/fit_sentence_ranker.py: the replay of the further sentences an answer shows."""

from __future__ import annotations

from types import SimpleNamespace

from rag.generate.extractive import ScoredSentence
from rag.text_units import Span
from rag.types import Passage
from tests.helpers import load_eval_script

stages = load_eval_script("answer_stages")
ranker = load_eval_script("fit_sentence_ranker")

STORY = "Timmy went out to play. He found the dog under the porch. The dog was happy."
OTHER = "The porch was painted blue last spring."


def _passage(number: int, text: str) -> Passage:
    return Passage(number, "s.txt", "/s.txt", f"d{number}", 0, len(text), text, None, (), 1.0)


def _sentence(passage: int, text: str, whole: str, lexical: float, dense: float) -> ScoredSentence:
    start = whole.index(text)
    return ScoredSentence(passage, Span(start, start + len(text), text), lexical, dense)


READ = [_passage(1, OTHER), _passage(2, STORY)]
FOUND = _sentence(2, "He found the dog under the porch.", STORY, 0.6, 0.7)
FIRST = _sentence(2, "Timmy went out to play.", STORY, 0.1, 0.2)
HAPPY = _sentence(2, "The dog was happy.", STORY, 0.3, 0.4)
BLUE = _sentence(1, OTHER, OTHER, 0.5, 0.3)


def _row(references: list[str], read: list[Passage] = READ) -> dict:
    return {"id": "q", "question": "Where did he find the dog?", "references": references, "answerable": True, "read": read}


def _answer(text: str) -> SimpleNamespace:
    return SimpleNamespace(text=text, answered=True)


def test_stage_is_right_when_the_answer_holds_the_reference() -> None:
    result = stages.judge(_row(["under the porch"]), _answer("He found the dog under the porch. [2]"), [FOUND, BLUE])
    assert result["stage"] == "right"
    assert result["ceiling"] == [True, True, True]


def test_stage_is_retrieval_when_no_passage_read_holds_it() -> None:
    result = stages.judge(_row(["in the garden"]), _answer("He found the dog under the porch. [2]"), [FOUND])
    assert result["stage"] == "retrieval"
    assert result["sentences"] == []


def test_stage_is_refused_when_the_passages_hold_it_but_the_answerer_refused() -> None:
    refused = SimpleNamespace(text="The documents do not contain an answer to this question.", answered=False)
    assert stages.judge(_row(["under the porch"]), refused, [FOUND])["stage"] == "refused"


def test_stage_is_ranking_when_the_best_sentence_lacks_it() -> None:
    result = stages.judge(_row(["Timmy"]), _answer("The porch was painted blue last spring. [1]"), [BLUE, FOUND, FIRST])
    assert result["stage"] == "ranking"
    assert result["ceiling"] == [False, False, True]  # third best holds it


def test_sentence_features_place_and_neighbours() -> None:
    features = stages.sentence_features([FOUND, BLUE, HAPPY, FIRST], READ, ["the dog"])
    found, blue, happy, first = features
    assert (found["rank"], blue["rank"]) == (1, 0)  # the passage's place in the read, not its number
    assert found["neighbour"] == 0.4  # the better of the sentences beside it (0.2 before, 0.4 after)
    assert first["neighbour"] == 0.7 and blue["neighbour"] == 0.0  # alone in its passage
    assert [f["label"] for f in features] == [True, False, True, False]


def test_followers_replay_counts_further_sentences_over_the_ratio() -> None:
    sentences = [{"score": 0.6, "label": False}, {"score": 0.5, "label": True}, {"score": 0.2, "label": True}]
    rows = [{"answered": True, "sentences": sentences}, {"answered": False, "sentences": sentences}]
    assert ranker.followers(rows, 0.85) == (0.0, 1.0)  # 0.5 < 0.85 * 0.6: only the best
    assert ranker.followers(rows, 0.8) == (0.5, 2.0)  # 0.5 >= 0.48: shown, holds it; the refused row counts as lost
