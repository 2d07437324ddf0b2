"""Static int8 MiniLM (calibrated activation scales) against the default dynamic build `dynint8-r3`: bare-model
texts/s and cosine to the fp32 model, on whatever kernels this process gets (run it again under
`eval/avx2_proxy` for the AVX2 ones). Measured in docs/embeddings.md, "Static int8 (calibrated activations)";
not kept: nothing in rag/ uses these builds.

Builds (into --work, once, natively):
- `qdq`: onnxruntime `quantize_static`, QDQ format, int8 weights per channel with 7 bits (`reduce_range`, no
  saturation without VNNI), uint8 activations with MinMax-calibrated scales; only the weight matmuls (as
  `dynint8-r3`) and no output quantisation, so onnxruntime fuses each into `MatMulIntegerToFloat`. Two files: from
  the fused graph `dynint8-r3` starts from (for onnxruntime) and from the plain fp32 graph (for OpenVINO, which
  does not read onnxruntime's fused operators).
- `nncf`: NNCF post-training quantisation with `model_type=TRANSFORMER` of the plain fp32 graph, saved as
  OpenVINO IR. Needs `nncf` importable (it is no dependency of rag: `pip install --target DIR nncf==3.4.0` and
  pass `--side-packages DIR`).
- `nbits`: not static, but the other int8 route onnxruntime offers: `MatMulNBits` (8-bit weights, symmetric, in
  blocks of 128 along the input, `accuracy_level=4`: activations quantised to int8 per block as it multiplies) from
  the fused graph. Its quantiser needs `onnx_ir` (`pip install --target DIR onnx_ir`, `--side-packages DIR`).
Calibration texts: the sample corpus in data/ in 1,500-character pieces and a few generic sentences (no SciFact,
no DROP).

Bench: texts/s over the first --docs SciFact documents (title and text cut at 1,500 characters, batches of 8 by
token count, masked graph only, every variant in one process, passes alternated), and cosine to the fp32 model
(onnxruntime, the bundled file) on tests/test_minilm_int8.py's texts and on 300 other SciFact documents.

    python eval/bench_static_int8.py build
    python eval/bench_static_int8.py build-nncf --side-packages /tmp/nncf-pkgs
    python eval/bench_static_int8.py build-nbits --side-packages /tmp/onnx-ir-pkgs
    python eval/bench_static_int8.py bench --variants r3,qdq-ort,qdq-ov,nncf-ov,ov-bundled,nbits8-ort
    python eval/avx2_proxy --packages onnxruntime numpy openvino -- python eval/bench_static_int8.py bench ...
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench_bare_runtimes import DEFAULT_CORPUS, load_texts  # noqa: E402

GENERIC = [
    "The quarterly report shows revenue grew by four percent while operating costs stayed flat.",
    "To reset your password, open the account settings page and choose 'Forgot password'.",
    "The train to the airport leaves every twenty minutes from platform three.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She opened the window, and the cold morning air filled the small kitchen.",
    "Install the package with pip, then run the command-line tool with --help to see its options.",
    "The committee postponed the vote until the budget figures are reviewed by the auditors.",
    "Water boils at a lower temperature at high altitude because the air pressure is lower.",
    "A function that calls itself is called recursive; it needs a base case to stop.",
    "The museum's new exhibition covers two centuries of maritime trade in the Baltic.",
    "What is the refund policy for cancelled orders?",
    "how do I configure the proxy server",
    "Heavy rain is expected across the northern region tonight, with winds up to 60 km/h.",
    "The contract may be terminated by either party with thirty days' written notice.",
    "Our team migrated the database to a new cluster during the weekend maintenance window.",
    "Children learn languages faster when they hear them spoken at home every day.",
    "The recipe calls for two cups of flour, one egg, and a pinch of salt.",
    "Symptoms include fever, cough and fatigue; most patients recover within two weeks.",
    "He scored twice in the second half, and the home team won three to one.",
    "Encryption keys must be rotated every ninety days according to the security policy.",
]


def calibration_texts() -> list[str]:
    texts = []
    for path in sorted((REPO / "data").rglob("*")):
        if path.suffix in {".md", ".txt", ".html"}:
            body = path.read_text(encoding="utf-8", errors="ignore")
            texts += [body[i : i + 1500] for i in range(0, len(body), 1500) if body[i : i + 1500].strip()]
    return texts + GENERIC + [" ".join(GENERIC[i : i + 8]) for i in range(0, len(GENERIC), 4)]


def batches(texts: list[str]) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """Batches of 8 by token count, as the embedder forms them, padded to their longest text."""
    from rag.index.embedders.minilm import length_batches, model_tokenizer

    encodings = model_tokenizer(256).encode_batch(texts)
    for rows in length_batches([len(e.ids) for e in encodings], 8):
        ids = np.zeros((len(rows), max(len(encodings[i].ids) for i in rows)), np.int64)
        mask = np.zeros_like(ids)
        for row, i in enumerate(rows):
            ids[row, : len(encodings[i].ids)], mask[row, : len(encodings[i].ids)] = encodings[i].ids, encodings[i].attention_mask
        yield rows, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def fp32_graphs(work: Path) -> tuple[Path, Path]:
    """The plain fp32 graph and the fused one `dynint8-r3` quantises, built as minilm_int8 builds them."""
    import onnx
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from rag.core.bundled import model_path
    from rag.index.embedders.minilm_int8 import dequantized_source, without_softmax_nan_guards

    plain, fused = work / "fp32.onnx", work / "fused.onnx"
    if not fused.is_file():
        work.mkdir(parents=True, exist_ok=True)
        onnx.save(without_softmax_nan_guards(dequantized_source(model_path())), str(plain))
        fusions = FusionOptions("bert")
        fusions.enable_skip_layer_norm = False
        optimizer.optimize_model(str(plain), model_type="bert", num_heads=12, hidden_size=384, opt_level=1, optimization_options=fusions).save_model_to_file(str(fused))
    return plain, fused


def build_qdq(work: Path) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    calibration = calibration_texts()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = (feeds for _, feeds in batches(calibration))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    plain, fused = fp32_graphs(work)
    for source, target in ((fused, work / "qdq.onnx"), (plain, work / "qdq-plain.onnx")):
        graph = onnx.load(str(source)).graph
        constants = {init.name for init in graph.initializer}
        attention = [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] not in constants]
        quantize_static(
            str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
            nodes_to_exclude=attention, per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]},
        )
        print(f"built {target} from {len(calibration)} calibration texts")


def build_nncf(work: Path) -> None:
    import nncf
    import openvino

    plain, _ = fp32_graphs(work)
    items = [feeds for _, feeds in batches(calibration_texts())]
    quantized = nncf.quantize(openvino.Core().read_model(str(plain)), nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items))
    openvino.save_model(quantized, str(work / "nncf.xml"), compress_to_fp16=False)
    print(f"built {work / 'nncf.xml'} with nncf {nncf.__version__} from {len(items)} calibration batches")


def build_nbits(work: Path) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    _, fused = fp32_graphs(work)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(fused)), bits=8, block_size=128, is_symmetric=True, accuracy_level=4)
    quantizer.process()
    quantizer.model.save_model_to_file(str(work / "nbits8.onnx"))
    print(f"built {work / 'nbits8.onnx'}")


Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"])
    return lambda feeds: session.run(None, feeds)[0]


def openvino_runner(path: Path, threads: int) -> Runner:
    import openvino

    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request, output = compiled.create_infer_request(), compiled.outputs[0]
    return lambda feeds: request.infer(feeds)[output]


def variants(work: Path, threads: int) -> dict[str, Callable[[], Runner]]:
    from rag.core.bundled import model_path
    from rag.index.embedders.minilm_int8 import model_cache_dir, quantized_model_path

    return {
        "fp32": lambda: onnxruntime_runner(model_path(), threads),
        "r3": lambda: onnxruntime_runner(quantized_model_path(model_cache_dir(), "dynint8-r3"), threads),
        "qdq-ort": lambda: onnxruntime_runner(work / "qdq.onnx", threads),
        "qdq-ov": lambda: openvino_runner(work / "qdq-plain.onnx", threads),
        "nncf-ov": lambda: openvino_runner(work / "nncf.xml", threads),
        "ov-bundled": lambda: openvino_runner(model_path(), threads),
        "nbits8-ort": lambda: onnxruntime_runner(work / "nbits8.onnx", threads),
    }


def embed(run: Runner, texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 384), np.float32)
    for rows, feeds in batches(texts):
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (run(feeds) * mask).sum(1) / mask.sum(1)
        out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def bench(work: Path, names: list[str], passes: int, threads: int, docs: int) -> None:
    from test_minilm_int8 import TEXTS

    speed, other = load_texts(DEFAULT_CORPUS, docs), load_texts(DEFAULT_CORPUS, 1300)[1000:]
    table = variants(work, threads)
    reference = table["fp32"]()
    reference_vectors = embed(reference, TEXTS), embed(reference, other)
    runners = {name: table[name]() for name in names}
    for name, run in runners.items():
        vectors = embed(run, TEXTS), embed(run, other)
        (test, scifact), (test_ref, _) = ((a * b).sum(1) for a, b in zip(vectors, reference_vectors)), reference_vectors
        same_nearest = ((vectors[0] @ vectors[0].T).argsort(1)[:, -2] == (test_ref @ test_ref.T).argsort(1)[:, -2]).mean()
        print(f"{name:<11} cosine to fp32: test's texts mean {test.mean():.4f} min {test.min():.4f} (same nearest {same_nearest:.2f}); "
              f"300 SciFact mean {scifact.mean():.4f} min {scifact.min():.4f}", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(passes):
        for name, run in runners.items():
            started = time.perf_counter()
            embed(run, speed)
            rates[name].append(len(speed) / (time.perf_counter() - started))
    for name in names:
        print(f"{name:<11} texts/s " + " / ".join(f"{rate:.1f}" for rate in rates[name]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["build", "build-nncf", "build-nbits", "bench"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/rag-static-int8"), help="where the builds go")
    parser.add_argument("--side-packages", type=Path, help="a folder nncf or onnx_ir was installed into (pip install --target)")
    parser.add_argument("--variants", default="r3,qdq-ort,qdq-ov,ov-bundled", help="comma-separated: r3, qdq-ort, qdq-ov, nncf-ov, ov-bundled, nbits8-ort, fp32")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--docs", type=int, default=400, help="SciFact documents per timed pass")
    args = parser.parse_args()
    if args.side_packages:
        sys.path.append(str(args.side_packages))  # after the venv's own packages: its numpy stays the one in use
    logging.disable(logging.WARNING)  # the quantiser's advice for image models
    if args.mode == "build":
        build_qdq(args.work)
    elif args.mode == "build-nncf":
        build_nncf(args.work)
    elif args.mode == "build-nbits":
        build_nbits(args.work)
    else:
        bench(args.work, args.variants.split(","), args.passes, args.threads, args.docs)


if __name__ == "__main__":
    main()
