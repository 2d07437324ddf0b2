"""Where the int8 model's time goes: onnxruntime's operator profile of the graph the embedder runs on full unpadded
batches (mask-free, fused attention), on whatever kernels this process gets (run it again under `eval/avx2_proxy`
for the AVX2 ones).

Each pass runs `--batches` batches of 8 SciFact documents cut to `--tokens` tokens (252: a full chunk of 250 plus
[CLS] and [SEP], the ingest's commonest length). It prints ms per batch and each operator type's share of the
kernel time, summed over the timed passes. `--gelu fast` swaps each `BiasGelu` (exact, erf) for `FastGelu` (the
tanh approximation) to price that kernel: a different function, so different vectors, not a drop-in change.
onnxruntime's CPU `MultiHeadAttention` uses its flash-attention kernel unless `ORT_DISABLE_FLASH_ATTENTION=1`.

    # about 1 minute natively, 2 under the AVX2 proxy
    python eval/profile_int8_ops.py
    python eval/avx2_proxy --packages onnxruntime numpy -- python eval/profile_int8_ops.py --tokens 180 --gelu fast
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench_bare_runtimes import DEFAULT_CORPUS, load_texts

BATCH = 8


def main() -> None:
    import onnxruntime as ort

    from rag.config import EmbeddingConfig
    from rag.index.embedders.minilm import MiniLMOnnxEmbedder, model_tokenizer, unpadded_graph
    from rag.index.embedders.minilm_int8 import session_disabled_optimizers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a BEIR corpus.jsonl (default: SciFact)")
    parser.add_argument("--tokens", type=int, default=252, help="tokens per text, [CLS] and [SEP] included")
    parser.add_argument("--batches", type=int, default=10, help="batches of 8 per pass")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gelu", choices=["exact", "fast"], default="exact", help="fast: FastGelu instead of BiasGelu")
    args = parser.parse_args()

    config = EmbeddingConfig(threads=args.threads)
    embedder = MiniLMOnnxEmbedder(config)
    graph = unpadded_graph(embedder.onnx_path())
    if args.gelu == "fast":
        for node in graph.graph.node:
            if node.op_type == "BiasGelu":
                node.op_type = "FastGelu"  # same inputs (x, bias), same domain
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ops")
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=session_disabled_optimizers(config.effective_int8_recipe()))

    encodings = model_tokenizer(args.tokens).encode_batch(load_texts(args.corpus, cut=None))
    ids = np.array([e.ids for e in encodings if len(e.ids) == args.tokens][: args.batches * BATCH], dtype=np.int64)
    if len(ids) < args.batches * BATCH:
        raise SystemExit(f"only {len(ids)} documents reach {args.tokens} tokens: ask for fewer --batches or --tokens")
    feeds = [{"input_ids": b, "attention_mask": np.ones_like(b), "token_type_ids": np.zeros_like(b)} for b in np.split(ids, args.batches)]

    for feed in feeds[:2]:  # warm-up, left out of the profile
        session.run(None, feed)
    best = float("inf")
    for _ in range(args.passes):
        started = time.perf_counter()
        for feed in feeds:
            session.run(None, feed)
        best = min(best, (time.perf_counter() - started) / args.batches)
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    profile.parent.rmdir()
    runs = sorted(event["ts"] for event in events if event.get("cat") == "Session" and event["name"] == "model_run")
    timed_from_us = runs[2]  # after the two warm-up runs
    kernel_us: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= timed_from_us:
            kernel_us[event["args"]["op_name"]] += event["dur"]
    total = sum(kernel_us.values())
    print(f"{args.tokens} tokens, batch {BATCH}, {args.threads} threads, gelu {args.gelu}: best pass "
          f"{best * 1000:.1f} ms per batch ({BATCH / best:.1f} texts/s)")
    for op, us in kernel_us.most_common():
        print(f"  {op:<24} {100 * us / total:5.1f}%")


if __name__ == "__main__":
    main()
