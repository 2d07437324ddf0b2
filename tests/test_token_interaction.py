"""The bundled MiniLM's token states (`embed_with_tokens`), which eval/maxsim_sentences.py reads for its
late-interaction measure (docs/answers.md, Round 6): from the same model run as the pooled vectors."""

from __future__ import annotations

import numpy as np

from rag.config import load_config
from rag.index.embedders.minilm import MiniLMOnnxEmbedder


def test_token_states_come_from_the_same_run_as_the_pooled_vectors() -> None:
    model = MiniLMOnnxEmbedder(load_config(None, []).embedding)
    texts = ["Who found the dog?", "Timmy found it under the porch.", ""]
    vectors, states = model.embed_with_tokens(texts)
    assert np.array_equal(vectors, model.embed(texts))  # the same pooled vectors, float for float
    assert states[0].tokens == ("who", "found", "the", "dog", "?")  # word pieces only: no [CLS] / [SEP]
    assert states[1].vectors.shape == (len(states[1].tokens), model.dimension)
    assert np.allclose(np.linalg.norm(states[1].vectors, axis=1), 1.0, atol=1e-5)
    assert states[2].tokens == () and states[2].vectors.shape == (0, model.dimension)
    # contextual: "found" in two sentences is not one vector
    assert float(states[0].vectors[1] @ states[1].vectors[1]) < 0.999
    empty_vectors, empty_states = model.embed_with_tokens([])
    assert empty_vectors.shape == (0, model.dimension) and empty_states == []
