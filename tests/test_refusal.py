"""The offline answerer's refusal decision: the names-and-figures signal on hand-made questions, the rules that
refuse (or no longer refuse) on hand-made evidence, and the whole decision on a tiny fixture with the bundled
embedder."""

from __future__ import annotations

import pytest

from rag.config import load_config
from rag.generate.answer_types import Expected
from rag.generate.calibration import missing_names, question_names
from rag.generate.extractive import NAMES_MIN_SCORE, NOT_FOUND, ExtractiveAnswerer, ScoredSentence, _weak_evidence, coverage_features
from rag.text_units import Span
from rag.types import Passage


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What's the guest Wi-Fi password at the Lisbon office?", ["Wi-Fi", "Lisbon"]),
        ("When is Tidewater 5.0 planned to be released?", ["Tidewater", "5.0"]),
        ("Which company administers our 401(k) plan?", ["401(k)"]),  # the opening "Which" is no name
        ("Who approves an expense claim of $2,000?", ["$2,000"]),
        ("Which of Shakespeare's tragedies were taught?", ["Shakespeare"]),  # possessive cut
        ("I think I left my laptop on the train. How quickly must I report it?", []),  # sentence openings, "I"
        ("What software does the poster have on his PC?", []),  # short acronyms are often spelt out
        ("If I'm the primary on-call engineer, when do I page?", []),  # contractions are no names
    ],
)
def test_question_names(question: str, names: list[str]) -> None:
    assert question_names(question) == names


def test_missing_names_ignore_case_accents_and_thousands_separators() -> None:
    text = "Kadir Topbaş was elected mayor in 2004. Claims over $2000 need the CFO's approval. The LISBON office opens at 8."
    assert missing_names("When was Kadir Topbas first elected?", text) == []
    assert missing_names("Who approves claims over $2,000?", text) == []
    assert missing_names("When does the Lisbon office open?", text) == []
    assert missing_names("When does the Toronto office open?", text) == ["Toronto"]
    assert missing_names("Who was elected in 2008?", text) == ["2008"]


def scored(lexical: float, dense: float, typed: float = 0.0) -> list[ScoredSentence]:
    return [ScoredSentence(1, Span(0, 10, "x" * 10), lexical, dense, typed), ScoredSentence(1, Span(20, 30, "y" * 10), 0.1, 0.1)]


def test_a_weak_passage_without_the_asked_name_is_refused_a_strong_one_is_not() -> None:
    low, high = scored(0.3, 0.45), scored(0.5, 0.5)  # scores 0.375 and 0.5
    assert low[0].score < NAMES_MIN_SCORE <= high[0].score
    assert "name(s) or figure(s)" in _weak_evidence(Expected.ENTITY, low, 0.28, {"missing_names": 1})
    assert _weak_evidence(Expected.ENTITY, low, 0.28, {"missing_names": 0}) == ""
    assert _weak_evidence(Expected.ENTITY, high, 0.28, {"missing_names": 1}) == ""


def test_a_paraphrase_keeps_its_answer_where_the_question_words_are_unseen_or_few() -> None:
    silent = {"unseen": 0.5, "unseen_words": 2}
    assert "no retrieved passage" in _weak_evidence(Expected.ENTITY, scored(0.3, 0.45), 0.28, silent)
    assert _weak_evidence(Expected.ENTITY, scored(0.3, 0.7), 0.28, silent) == ""  # means what is asked: paraphrased
    assert "too few" in _weak_evidence(Expected.PERSON, scored(0.1, 0.45, 0.05), 0.28, {})
    assert _weak_evidence(Expected.PERSON, scored(0.1, 0.65, 0.05), 0.28, {}) == ""


def test_coverage_features_count_the_names_the_best_passage_lacks() -> None:
    passages = [Passage(1, "a.md", "/a.md", "a", 0, 60, "Public Wi-Fi may be used only with the VPN turned on.", None, ("Network",), 1.0),
                Passage(2, "b.md", "/b.md", "b", 0, 40, "The Lisbon office opens at 08:00.", None, (), 1.0)]
    question = "What's the guest Wi-Fi password at the Lisbon office?"
    assert coverage_features(question, passages, 1)["missing_names"] == 1  # Lisbon
    assert coverage_features(question, passages, 2)["missing_names"] == 1  # Wi-Fi


@pytest.fixture(scope="module")
def answerer() -> ExtractiveAnswerer:
    from rag.index.embedders import build_embedder

    config = load_config(None, [])
    return ExtractiveAnswerer(config.generation, build_embedder(config.embedding))


HANDBOOK = [
    "Public Wi-Fi in hotels, airports and cafes may be used only with the VPN turned on. Home routers must use WPA2 encryption and a strong password.",
    "Visitors to the Toronto office sign in at reception and get a guest badge.",
    "The Toronto office hotel cap is CAD 300 per night. The travel desk books flights through Farecove.",
]


def test_refusal_on_a_tiny_handbook(answerer: ExtractiveAnswerer) -> None:
    """Asked about Lisbon's guest Wi-Fi password over documents that speak of Wi-Fi, passwords and guests but never
    of Lisbon, the answerer refuses and says why (before the names signal it quoted the public Wi-Fi rule); asked
    what they do say, it answers with the documents' sentence."""
    passages = [Passage(i, f"d{i}.md", f"/d{i}.md", f"d{i}", 0, len(t), t, None, (), 1.0) for i, t in enumerate(HANDBOOK, start=1)]
    silent = answerer.answer("What's the guest Wi-Fi password at the Lisbon office?", passages)
    assert silent.text == NOT_FOUND and not silent.answered
    assert "name(s) or figure(s)" in str(silent.trace["evidence"])
    spoken = answerer.answer("What is the hotel cap in Toronto?", passages)
    assert spoken.answered and "CAD 300" in spoken.text


def test_an_answer_from_the_wider_read_needs_the_retrieved_passages_to_speak_of_the_question(answerer: ExtractiveAnswerer) -> None:
    """The answerer reads more than retrieval found (neighbours, further chunks); whether the documents are silent
    is judged on what retrieval found. Retrieved: only the Wi-Fi rule; the wider read holds the Toronto hotel cap."""
    passages = [Passage(i, f"d{i}.md", f"/d{i}.md", f"d{i}", 0, len(t), t, None, (), 1.0) for i, t in enumerate(HANDBOOK, start=1)]
    question = "What is the hotel cap in Toronto?"
    assert answerer.answer(question, passages).answered  # the wider read alone would answer
    refused = answerer.answer(question, passages, shown=passages[:1])
    assert not refused.answered and refused.text == NOT_FOUND
    assert str(refused.trace["evidence"]).endswith("(in the retrieved passages)")
    kept = answerer.answer(question, passages, shown=passages[2:])
    assert kept.answered and "CAD 300" in kept.text


def test_a_wider_read_of_fewer_longer_passages_is_still_checked_against_the_retrieved_ones(answerer: ExtractiveAnswerer) -> None:
    """The wider read joins a retrieved chunk with its neighbours into one passage, so it can hold fewer passages
    than were retrieved though it reads more: the check must compare what they cover, not how many there are."""
    joined = f"{HANDBOOK[0]} {HANDBOOK[2]}"
    wide = [Passage(1, "d1.md", "/d1.md", "d1", 0, len(joined), joined, None, (), 1.0)]
    shown = [Passage(1, "d1.md", "/d1.md", "d1", 0, len(HANDBOOK[0]), HANDBOOK[0], None, (), 1.0),
             Passage(2, "d2.md", "/d2.md", "d2", 0, len(HANDBOOK[1]), HANDBOOK[1], None, (), 1.0)]
    question = "What is the hotel cap in Toronto?"
    assert answerer.answer(question, wide).answered
    refused = answerer.answer(question, wide, shown=shown)
    assert not refused.answered and str(refused.trace["evidence"]).endswith("(in the retrieved passages)")


def test_evidence_replays_the_decision_under_other_gates() -> None:
    """eval/refusal_gates.py calibrates by replaying recorded evidence: the same Evidence must refuse under the
    default names gate and answer under a lower one, and the paraphrase relaxation must release the unseen-words rule."""
    from rag.generate.extractive import Evidence, RefusalGates

    weak_names = Evidence(Expected.ENTITY, scored(0.4, 0.45), {"missing_names": 1}, False)  # score 0.425
    assert "name(s) or figure(s)" in weak_names.weakness(0.28)
    assert weak_names.weakness(0.28, RefusalGates(names_min_score=0.4)) == ""
    unseen = Evidence(Expected.ENTITY, scored(0.3, 0.57), {"unseen": 0.5, "unseen_words": 2}, False)
    assert unseen.weakness(0.28) == ""  # dense 0.57 >= 0.55: a paraphrase
    assert "no retrieved passage" in unseen.weakness(0.28, RefusalGates(paraphrase_dense=0.6))


class RecordingEmbedder:
    """The bundled embedder, recording the texts of each call: the check on the retrieved passages must embed
    only sentences the wider read did not hold."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]):
        self.calls.append(list(texts))
        return self.inner.embed(texts)


def test_the_retrieved_passages_check_reuses_the_wider_reads_sentences(answerer: ExtractiveAnswerer) -> None:
    """Issue 20 item 3: the second read scores the sentences both reads share from the first read's work (no text
    embedded twice) and reaches exactly the evidence a fresh read of the retrieved passages reaches. Exactly when
    vectors come from the pipeline's CachedEmbedder: the bundled int8 model's vector of a text shifts with the batch
    it is embedded in (dynamic quantisation), so without the cache two fresh reads differ from each other too."""
    from rag.generate.extractive import CachedEmbedder, QuestionReading

    joined = f"{HANDBOOK[0]} {HANDBOOK[2]}"
    wide = [Passage(1, "d1.md", "/d1.md", "d1", 0, len(joined), joined, None, (), 1.0)]
    shown = [Passage(1, "d1.md", "/d1.md", "d1", 0, len(HANDBOOK[0]), HANDBOOK[0], None, (), 1.0),
             Passage(2, "d2.md", "/d2.md", "d2", 0, len(HANDBOOK[1]), HANDBOOK[1], None, (), 1.0)]
    question = "What is the hotel cap in Toronto?"
    recording = RecordingEmbedder(answerer.embedder)
    counted = ExtractiveAnswerer(answerer.config, recording)
    refused = counted.answer(question, wide, shown=shown)
    assert not refused.answered and str(refused.trace["evidence"]).endswith("(in the retrieved passages)")
    first, second = recording.calls  # the wider read (with the question), then only what it did not hold
    assert first[0] == question and HANDBOOK[1] not in first
    assert second == [HANDBOOK[1]]  # the Toronto reception sentence: the only one the wider read lacks
    embedded = [t for call in recording.calls for t in call]
    assert len(embedded) == len(set(embedded))

    cached = ExtractiveAnswerer(answerer.config, CachedEmbedder(answerer.embedder, "test-two-reads"))
    reading = QuestionReading(question, cached.embedder)
    cached.evidence(question, wide, shown=shown, reading=reading)
    assert cached.evidence(question, shown, reading=reading) == cached.evidence(question, shown)  # exact floats


def test_further_sentences_from_other_documents_at_the_same_offsets_are_shown(answerer: ExtractiveAnswerer) -> None:
    """Sentences of two documents are not the same sentence because their offsets overlap (both start at 0): the
    second document's sentence scoring near the best is shown too (before, only sentences at other offsets were).
    One sentence found in two documents (a repost) is shown once."""
    texts = [
        "New employees get 20 vacation days per year.",
        "Vacation days for new employees: 20 per year, rising to 25 after five years.",
        "New employees get 20 vacation days per year.",
    ]
    passages = [Passage(i, f"d{i}.md", f"/d{i}.md", f"d{i}", 0, len(t), t, None, (), 1.0) for i, t in enumerate(texts, start=1)]
    answer = answerer.answer("How many vacation days do new employees get?", passages)
    assert answer.answered
    assert "rising to 25 after five years" in answer.text
    assert sum("New employees get 20 vacation days per year." in line for line in answer.lines) == 1
