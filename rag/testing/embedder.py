"""The embedder contract (`rag.index.contracts.Embedder`) as a test suite."""

from __future__ import annotations

import numpy as np

from rag.index.contracts import Embedder

TEXTS = [
    "New employees get twenty vacation days per year.",
    "Hotel rooms in high-cost cities are capped at 350 dollars per night.",
    "Report a lost laptop to the security team within one hour.",
]


class EmbedderContract:
    """Provide an `embedder` fixture.

    `semantic`: whether the vectors carry meaning (a text about cats is nearer another about cats than one about
    revenue); `batch_tolerance`: the least cosine between a text's vectors embedded alone and within a batch (an
    int8 model quantises activations per batch, so its vectors move slightly with the batch).
    """

    semantic = True
    batch_tolerance = 0.99

    def test_vectors_are_unit_length_float32_rows(self, embedder: Embedder) -> None:
        vectors = embedder.embed(TEXTS)
        assert vectors.dtype == np.float32
        assert vectors.ndim == 2 and vectors.shape[0] == len(TEXTS) and vectors.shape[1] > 0
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)

    def test_no_texts_give_no_rows(self, embedder: Embedder) -> None:
        assert len(embedder.embed([])) == 0

    def test_model_id_names_the_model(self, embedder: Embedder) -> None:
        before = embedder.model_id
        embedder.embed(TEXTS[:1])
        assert isinstance(before, str) and before.strip() and embedder.model_id == before

    def test_a_text_gets_the_same_vector_alone_or_in_a_batch(self, embedder: Embedder) -> None:
        alone = embedder.embed([TEXTS[1]])[0]
        batched = embedder.embed([TEXTS[0], TEXTS[1], TEXTS[2] * 3])[1]
        assert float(alone @ batched) >= self.batch_tolerance

    def test_rows_follow_the_order_of_the_texts(self, embedder: Embedder) -> None:
        forward = embedder.embed(TEXTS)
        backward = embedder.embed(list(reversed(TEXTS)))
        for row, other in zip(forward, reversed(backward)):
            assert float(row @ other) >= self.batch_tolerance
        assert float(forward[0] @ forward[1]) < 0.999  # different texts, different vectors

    def test_related_texts_are_nearer_than_unrelated_ones(self, embedder: Embedder) -> None:
        if not self.semantic:
            return
        cat, kitten, revenue = embedder.embed(
            ["The cat sat on the mat.", "A cat was sitting on a small mat.", "Quarterly revenue grew by ten percent."]
        )
        assert float(cat @ kitten) > float(cat @ revenue)
