"""The int8-compute MiniLM built locally from the bundled model: faithful vectors on every x86-64 CPU, one cached
build, old indexes queried with their own model. The tolerance checked here is the one docs/embeddings.md states."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import EmbeddingConfig
from rag.index.embedders.minilm import MiniLMOnnxEmbedder
from rag.index.embedders.minilm_int8 import RECIPE, RECIPES, quantized_model_path

from conftest import DATA

TEXTS = [
    path.read_text(encoding="utf-8")[:1500] for path in sorted(DATA.rglob("*")) if path.suffix in {".md", ".txt"}
] + ["How many vacation days do new employees get?", "reset a forgotten password", "x"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


def int8_and_fp32_vectors(cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """TEXTS embedded by the int8 build and by the fp32 reference, with the kernels this process's CPU selects."""
    int8 = MiniLMOnnxEmbedder(EmbeddingConfig(model_cache_dir=cache_dir)).embed(TEXTS)
    return int8, MiniLMOnnxEmbedder(EmbeddingConfig(precision="fp32")).embed(TEXTS)


def assert_int8_stays_close(int8: np.ndarray, fp32: np.ndarray) -> None:
    """The tolerance docs/embeddings.md states; tests/test_avx2_proxy.py also checks it on the AVX2 kernels."""
    cosines = (int8 * fp32).sum(axis=1)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert cosines.min() > 0.97 and cosines.mean() > 0.985, cosines  # a one-letter text is the worst case
    # ranking by similarity is what retrieval needs: the nearest text of each query stays the same
    assert ((int8 @ int8.T).argsort(axis=1)[:, -2] == (fp32 @ fp32.T).argsort(axis=1)[:, -2]).mean() >= 0.9


def test_int8_vectors_stay_close_to_the_bundled_model(cache_dir: Path) -> None:
    assert_int8_stays_close(*int8_and_fp32_vectors(cache_dir))


def test_no_pair_of_int8_products_can_saturate_without_vnni(cache_dir: Path) -> None:
    """AVX2 without VNNI adds two uint8 x int8 products into a saturating int16 (vpmaddubsw): 255 * 64 * 2 fits,
    255 * 127 * 2 does not. Weights within [-64, 63] make every CPU compute the same integers."""
    import onnx
    from onnx import numpy_helper

    built = onnx.load(str(quantized_model_path(cache_dir)))
    initializers = {init.name: init for init in built.graph.initializer}
    weights = [numpy_helper.to_array(initializers[node.input[1]]) for node in built.graph.node if node.op_type == "MatMulInteger"]
    assert len(weights) >= 36 and all(w.dtype == np.int8 for w in weights)
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
    assert 255 * 64 * 2 <= np.iinfo(np.int16).max


def test_the_build_really_multiplies_in_int8(cache_dir: Path) -> None:
    import onnx

    built = onnx.load(str(quantized_model_path(cache_dir)))
    ops = [node.op_type for node in built.graph.node]
    assert ops.count("MatMulInteger") >= 36  # 6 layers x (Q, K, V, out, FFN up, FFN down)
    assert "DynamicQuantizeLinear" in ops


def test_removing_the_softmax_nan_guards_changes_no_vector(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build drops PyTorch's `Where(IsNaN(p), 0, p)` after each softmax for speed; it must be a pure no-op on
    what we compute, padded batches included (a short text batched with long ones: its padding masks keys)."""
    import onnx

    from rag.index.embedders import minilm_int8

    built = onnx.load(str(quantized_model_path(cache_dir)))
    ops = [node.op_type for node in built.graph.node]
    assert "IsNaN" not in ops and ops.count("Softmax") == 6
    monkeypatch.setattr(minilm_int8, "without_softmax_nan_guards", lambda model: model)
    guarded = onnx.load(str(quantized_model_path(tmp_path)))
    assert [node.op_type for node in guarded.graph.node].count("IsNaN") == 6  # the source really has the guards
    texts = TEXTS + ["a", "short one", "x " * 300]
    # unpadded batches on the mask-free graph as is: the guards would stop its attention fusion, a change of its own
    new = mask_free_only(MiniLMOnnxEmbedder(EmbeddingConfig(model_cache_dir=cache_dir, batch_size=4))).embed(texts)
    old = mask_free_only(MiniLMOnnxEmbedder(EmbeddingConfig(model_cache_dir=tmp_path, batch_size=4))).embed(texts)
    assert np.array_equal(new, old)


def test_the_residual_layer_norms_stay_unfused_at_build_and_at_load(cache_dir: Path) -> None:
    """dynint8-r3 leaves each residual Add apart from its LayerNormalization (the fused SkipLayerNormalization kernel
    is the slow one), and the embedder's session must not let onnxruntime fuse them back while loading."""
    import onnx
    import onnxruntime as ort

    path = quantized_model_path(cache_dir, "dynint8-r3")
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") == 13  # embeddings + 2 per layer

    def vectors(disabled: list[str] | None) -> np.ndarray:
        model = MiniLMOnnxEmbedder(EmbeddingConfig(model_cache_dir=cache_dir, int8_recipe="dynint8-r3"))
        if disabled is not None:
            model.__dict__["_session"] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"], disabled_optimizers=disabled)
        return model.embed(TEXTS)

    embedded = vectors(None)
    assert np.array_equal(embedded, vectors(["SkipLayerNormFusion"]))
    assert not np.array_equal(embedded, vectors([]))  # refused at load, the fusion would change the vectors


def test_length_batches_put_texts_of_one_token_count_together_first() -> None:
    from rag.index.embedders.minilm import length_batches

    assert length_batches([3, 3, 3, 5, 5, 4, 3], 2) == [[0, 1], [2, 6], [3, 4], [5]]
    assert length_batches([7, 2, 9], 8) == [[1, 0, 2]]  # no full batch of one count: sorted and padded as before


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_the_mask_free_graph_has_no_mask_left_in_any_layer(cache_dir: Path, precision: str) -> None:
    import onnx

    from rag.index.embedders.unpadded import without_attention_mask

    model = onnx.load(str(MiniLMOnnxEmbedder(EmbeddingConfig(model_cache_dir=cache_dir, precision=precision)).onnx_path()))
    assert without_attention_mask(model)
    producers = {output: node for node in model.graph.node for output in node.output}
    softmax_inputs = [producers[node.input[0]].op_type for node in model.graph.node if node.op_type == "Softmax"]
    assert len(softmax_inputs) == 6 and "Add" not in softmax_inputs  # all six layers' additions, not just the first
    assert not any("attention_mask" in node.input for node in model.graph.node)  # its own computation is gone too
    read = {name for node in model.graph.node for name in node.input}
    assert all(init.name in read for init in model.graph.initializer)  # and its constants (onnxruntime warns of each)


FRUITS = [f"the {fruit} is ripe today" for fruit in ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum"]]


def mask_free_only(model: MiniLMOnnxEmbedder) -> MiniLMOnnxEmbedder:
    """`model` with its unpadded batches on the mask-free graph as it was before the attention fusion."""
    import onnx

    from rag.index.embedders.unpadded import without_attention_mask

    graph = onnx.load(str(model.onnx_path()))
    assert without_attention_mask(graph)
    model.__dict__["_unpadded_session"] = model._onnx_session(graph.SerializeToString())
    return model


def fused_and_unfused_vectors(cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """FRUITS (full unpadded batches of 4) and TEXTS through the int8 embedder as it runs, and with its mask-free
    graph left unfused, with the kernels this process's CPU selects."""
    config = EmbeddingConfig(model_cache_dir=cache_dir, batch_size=4)
    fused = MiniLMOnnxEmbedder(config).embed(FRUITS + TEXTS)
    return fused, mask_free_only(MiniLMOnnxEmbedder(config)).embed(FRUITS + TEXTS)


def assert_fused_attention_stays_close(fused: np.ndarray, unfused: np.ndarray) -> None:
    """The fused attention moves int8 vectors by rounding only (docs: min cosine 0.996 on SciFact, less than
    batching a text with other texts moves it); a mistake in the rewrite (scale, heads, layout) would move them far
    more."""
    cosines = (fused * unfused).sum(axis=1)
    assert cosines.min() > 0.99 and cosines.mean() > 0.995, cosines


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_unpadded_batches_skip_the_attention_mask_and_give_the_same_vectors(cache_dir: Path, precision: str) -> None:
    """Full batches of texts of one token count run the graph without the mask additions (unpadded.py): before the
    attention is fused, the vectors must be bit-identical to the masked graph's, next to padded batches in the
    same call."""
    config = EmbeddingConfig(model_cache_dir=cache_dir, precision=precision, batch_size=4)
    texts = FRUITS + TEXTS
    model = MiniLMOnnxEmbedder(config)
    assert len({len(model._tokenizer.encode(text).ids) for text in FRUITS}) == 1  # the premise: one count
    assert model._unpadded_session is not model._session  # the embedder builds a mask-free graph
    fast = mask_free_only(MiniLMOnnxEmbedder(config)).embed(texts)
    masked = MiniLMOnnxEmbedder(config)
    masked.__dict__["_unpadded_session"] = masked._session
    assert np.array_equal(fast, masked.embed(texts))
    if precision == "fp32":  # the reference keeps the export's attention (its NaN guards stop the fusion): as is
        assert np.array_equal(fast, model.embed(texts))
    query = MiniLMOnnxEmbedder(config)
    query.embed(["how ripe is the mango"])
    assert "_unpadded_session" not in query.__dict__  # a lone text keeps to one session: no second load for a query


def test_the_int8_mask_free_graph_runs_fused_attention_and_the_fp32_one_does_not(cache_dir: Path) -> None:
    from rag.index.embedders.minilm import unpadded_graph

    def ops(precision: str) -> list[str]:
        path = MiniLMOnnxEmbedder(EmbeddingConfig(model_cache_dir=cache_dir, precision=precision)).onnx_path()
        return [node.op_type for node in unpadded_graph(path).graph.node]

    int8 = ops("int8")
    assert int8.count("MultiHeadAttention") == 6 and "Softmax" not in int8 and int8.count("Transpose") == 0
    assert ops("fp32").count("MultiHeadAttention") == 0


def test_fused_attention_computes_what_the_unfused_graph_does() -> None:
    """The rewrite itself, in fp32 (no int8 rounding downstream to blur a mistake): the mask-free graph of the
    dequantised model with and without fused attention, hidden states of a batch of texts of one token count."""
    import onnx
    import onnxruntime as ort

    from rag.core.bundled import MINILM_HEADS, model_path
    from rag.index.embedders.minilm import model_tokenizer
    from rag.index.embedders.minilm_int8 import dequantized_source, without_softmax_nan_guards
    from rag.index.embedders.unpadded import with_fused_attention, without_attention_mask

    def mask_free() -> onnx.ModelProto:
        model = without_softmax_nan_guards(dequantized_source(model_path()))
        assert without_attention_mask(model)
        return model

    unfused, fused = mask_free(), mask_free()
    assert with_fused_attention(fused, MINILM_HEADS) == 6
    ids = np.array([encoding.ids for encoding in model_tokenizer(256).encode_batch(FRUITS)], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    run = lambda model: ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]  # noqa: E731
    expected, got = run(unfused), run(fused)
    assert np.abs(expected).max() > 1.0 and np.abs(got - expected).max() < 1e-4


def test_fused_attention_keeps_unpadded_int8_vectors_within_rounding(cache_dir: Path) -> None:
    assert_fused_attention_stays_close(*fused_and_unfused_vectors(cache_dir))


def test_the_build_is_reused_and_leaves_no_scratch(cache_dir: Path) -> None:
    path = quantized_model_path(cache_dir)
    stamp = path.stat().st_mtime_ns
    assert quantized_model_path(cache_dir) == path and path.stat().st_mtime_ns == stamp
    assert [p.name for p in cache_dir.iterdir() if p.name.startswith(".build-")] == []


@pytest.mark.slow
def test_concurrent_first_uses_build_one_model(tmp_path: Path) -> None:
    code = "import sys; from pathlib import Path; from rag.index.embedders.minilm_int8 import quantized_model_path; print(quantized_model_path(Path(sys.argv[1])))"
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]
    assert sum("building the int8 embedding model" in err for _, err in outputs) == 1  # the other one waited and reused it
    assert [p.suffix for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [".onnx"]


def test_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    from rag.errors import RagError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RagError) as raised:
        quantized_model_path(blocker / "models")
    assert "embedding.model_cache_dir" in raised.value.hint


def test_precision_is_part_of_the_model_id() -> None:
    assert EmbeddingConfig(precision="fp32").model_id() == "local:all-MiniLM-L6-v2-int8:256"  # unchanged for old indexes
    assert EmbeddingConfig().model_id() != EmbeddingConfig(precision="fp32").model_id()


def test_an_index_built_before_precision_existed_is_queried_with_its_own_model(tmp_path: Path, config_factory) -> None:
    import json

    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    (tmp_path / "doc.md").write_text("# Travel\n\nTrain tickets are reimbursed in second class.\n")
    with Index.open(tmp_path / "index", config_factory("embedding.precision=fp32"), writable=True) as index:
        Ingestor(index).ingest([str(tmp_path / "doc.md")])
        recorded = json.loads(index.manifest.get_meta("config"))
        del recorded["embedding"]["precision"]  # what an index written by an earlier version holds
        index.manifest.set_meta("config", json.dumps(recorded))
    with Index.open(tmp_path / "index", config_factory()) as index:
        assert index.indexed_embedding_config().precision == "fp32"


def test_an_index_built_with_an_older_int8_recipe_is_queried_with_it(tmp_path: Path, config_factory) -> None:
    import json

    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    older = next(recipe for recipe in RECIPES if recipe != RECIPE)
    (tmp_path / "doc.md").write_text("# Travel\n\nTrain tickets are reimbursed in second class.\n")
    cache = f"embedding.model_cache_dir={tmp_path / 'models'}"
    with Index.open(tmp_path / "index", config_factory(cache, f"embedding.int8_recipe={older}"), writable=True) as index:
        Ingestor(index).ingest([str(tmp_path / "doc.md")])
        recorded = json.loads(index.manifest.get_meta("config"))
        del recorded["embedding"]["int8_recipe"]  # what an index written before int8_recipe existed holds
        index.manifest.set_meta("config", json.dumps(recorded))
    with Index.open(tmp_path / "index", config_factory(cache)) as index:
        assert index.indexed_embedding_config().int8_recipe == older
        assert index.query_embedder.model_id.endswith(f"-{older}:256")
        index.query_embedder.embed(["train tickets"])
    assert [older in path.name for path in (tmp_path / "models").glob("*.onnx")] == [True]  # the current recipe was never needed


def test_an_unknown_int8_recipe_is_a_config_error(config_factory) -> None:
    from rag.errors import RagError

    with pytest.raises(RagError) as raised:
        config_factory("embedding.int8_recipe=dynint8-r0")
    assert "dynint8-r0" in str(raised.value)
