"""Token-level late interaction (MaxSim over the bundled MiniLM's token states) orders the answer's sentences: it
picks the sentence that says what the question asks where the pooled cosine picks one that merely shares its topic;
the refusal decision and embedders without token states are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import load_config
from rag.generate.extractive import CachedEmbedder, ExtractiveAnswerer, maxsim
from rag.index.embedders.minilm import MiniLMOnnxEmbedder
from rag.types import Passage

QUESTION = "Around what age did the author first ride a bike?"
TOPICAL = "I remember riding a bike on my uncle's old farm in 2001."
ANSWER = "I rode a bike when I was about 7, now I am 20."


class PooledOnly:
    """The bundled model seen through `embed` alone, as an embedder without token states (an OpenAI endpoint) is."""

    def __init__(self, inner: MiniLMOnnxEmbedder) -> None:
        self.inner = inner
        self.model_id = "pooled-only"

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def model() -> MiniLMOnnxEmbedder:
    return MiniLMOnnxEmbedder(load_config(None, []).embedding)


def _passages() -> list[Passage]:
    return [Passage(i, f"d{i}.md", f"/d{i}.md", f"d{i}", 0, len(t), t, None, (), 1.0) for i, t in enumerate([TOPICAL, ANSWER], 1)]


def test_token_states_come_from_the_same_run_as_the_pooled_vectors(model: MiniLMOnnxEmbedder) -> None:
    vectors, states = model.embed_with_tokens(["Who found the dog?", "Timmy found it."])
    assert np.allclose(vectors, model.embed(["Who found the dog?", "Timmy found it."]), atol=1e-6)
    assert states[0].tokens == ("who", "found", "the", "dog", "?")  # word pieces only: no [CLS] / [SEP]
    assert np.allclose(np.linalg.norm(states[1].vectors, axis=1), 1.0, atol=1e-5)


def test_maxsim_is_each_question_tokens_best_match_averaged() -> None:
    question = np.array([[1.0, 0.0], [0.0, 1.0]])
    sentence = np.array([[1.0, 0.0], [0.6, 0.8]])
    assert maxsim(question, sentence) == pytest.approx((1.0 + 0.8) / 2)
    assert maxsim(question, None) is None


def test_maxsim_leads_with_the_sentence_that_answers_where_the_pooled_cosine_does_not(model: MiniLMOnnxEmbedder) -> None:
    generation = load_config(None, []).generation
    pooled = ExtractiveAnswerer(generation, PooledOnly(model)).answer(QUESTION, _passages())
    late = ExtractiveAnswerer(generation, model).answer(QUESTION, _passages())
    assert pooled.answered and late.answered
    assert TOPICAL in pooled.text.splitlines()[0]  # the pooled score leads with the topical sentence
    assert ANSWER in late.text.splitlines()[0] and "about 7" in late.text.splitlines()[0]


def test_refusal_reads_the_same_score_with_or_without_token_states(model: MiniLMOnnxEmbedder) -> None:
    generation = load_config(None, []).generation
    question = "What is the capital of Mongolia?"
    for embedder in (PooledOnly(model), model, CachedEmbedder(model, "test-token-interaction")):
        answer = ExtractiveAnswerer(generation, embedder).answer(question, _passages())
        assert not answer.answered


def test_cached_embedder_remembers_token_states(model: MiniLMOnnxEmbedder) -> None:
    calls: list[list[str]] = []

    class Counting(PooledOnly):
        def embed_with_tokens(self, texts: list[str]):
            calls.append(texts)
            return self.inner.embed_with_tokens(texts)

    cache = CachedEmbedder(Counting(model), "test-token-cache")
    first = cache.embed_with_tokens([ANSWER, TOPICAL])
    again = cache.embed_with_tokens([TOPICAL, ANSWER])
    assert calls == [[ANSWER, TOPICAL]]
    assert np.allclose(first[1][0].vectors, again[1][1].vectors)
    assert CachedEmbedder(PooledOnly(model), "test-token-none").embed_with_tokens([ANSWER])[1] == [None]
