"""embedding.runtime: openvino: the bundled MiniLM on OpenVINO, within its documented tolerance (docs/embeddings.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import EmbeddingConfig
from rag.errors import RagError
from rag.index.embedders.minilm import MiniLMOnnxEmbedder

from test_minilm_int8 import TEXTS

openvino = pytest.importorskip("openvino", reason="the openvino extra is not installed: pip install -e '.[openvino]'")


def test_openvino_vectors_stay_close_to_the_fp32_model() -> None:
    fast = MiniLMOnnxEmbedder(EmbeddingConfig(runtime="openvino")).embed(TEXTS)
    fp32 = MiniLMOnnxEmbedder(EmbeddingConfig(precision="fp32")).embed(TEXTS)
    cosines = (fast * fp32).sum(axis=1)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert cosines.min() > 0.998 and cosines.mean() > 0.999, cosines


def test_openvino_is_its_own_model_id() -> None:
    ids = {EmbeddingConfig(runtime="openvino").model_id(), EmbeddingConfig().model_id(), EmbeddingConfig(precision="fp32").model_id()}
    assert len(ids) == 3


def test_an_openvino_index_is_queried_with_openvino(tmp_path: Path, config_factory) -> None:
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    (tmp_path / "doc.md").write_text("# Travel\n\nTrain tickets are reimbursed in second class.\n")
    with Index.open(tmp_path / "index", config_factory("embedding.runtime=openvino"), writable=True) as index:
        Ingestor(index).ingest([str(tmp_path / "doc.md")])
    with Index.open(tmp_path / "index", config_factory()) as index:  # the caller's config says onnxruntime
        assert index.query_embedder.model_id == EmbeddingConfig(runtime="openvino").model_id()
        assert index.query_embedder.embed(["train tickets"]).shape == (1, 384)


def test_missing_openvino_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # what `import openvino` meets when it is not installed
    with pytest.raises(RagError) as raised:
        MiniLMOnnxEmbedder(EmbeddingConfig(runtime="openvino")).embed(["x"])
    assert "rag[openvino]" in raised.value.hint
