"""Fused attention on the mask-free graph: vectors and speed against today's mask-free graph, on this CPU's kernels.

The embedder runs full batches of texts of one token count on a graph without the attention-mask additions
(`rag/index/embedders/unpadded.py`), whose attention `with_fused_attention` turns into one
`com.microsoft.MultiHeadAttention` node per layer. This script builds the mask-free graph of the default int8 model
without and with that fusion (the latter as the embedder runs it), with the embedder's session settings, and prints:
- cosines of the fused graph's vectors to the unfused graph's and to the fp32 reference (the bundled file,
  `precision: fp32`), per text (batch 1, so nothing is padded): the tolerance test's texts and `--docs` SciFact
  documents; and on the timed batches (8 texts of 256 tokens each);
- as a yardstick for int8 rounding, the unfused graph against itself with each text in other batch companions
  (int8 activations are quantised per batch);
- texts/s per pass on full unpadded batches (documents of at least 256 tokens cut to 256, batch 8), the two graphs
  alternated in one process.

    # about 1 minute natively, 2 under the AVX2 proxy (2 threads)
    python eval/bench_fused_attention.py --threads 2 --passes 4
    python eval/avx2_proxy --packages onnxruntime torch numpy -- python eval/bench_fused_attention.py --threads 2 --passes 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench_bare_runtimes import DEFAULT_CORPUS, load_texts  # noqa: E402
from test_minilm_int8 import TEXTS  # noqa: E402  the tolerance test's texts

BATCH = 8
TOKENS = 256


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def main() -> None:
    import onnx

    from rag.config import EmbeddingConfig
    from rag.index.embedders.minilm import MiniLMOnnxEmbedder, unpadded_graph
    from rag.index.embedders.unpadded import without_attention_mask

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a BEIR corpus.jsonl (default: SciFact)")
    parser.add_argument("--docs", type=int, default=300, help="documents compared one by one")
    parser.add_argument("--timed", type=int, default=320, help="texts of 256 tokens per timed pass")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", type=int, default=4, help="timed passes per graph, alternated")
    args = parser.parse_args()

    embedder = MiniLMOnnxEmbedder(EmbeddingConfig(threads=args.threads))
    mask_free = onnx.load(str(embedder.onnx_path()))
    assert without_attention_mask(mask_free)
    fused = unpadded_graph(embedder.onnx_path())  # what the embedder runs for full unpadded batches
    layers = [node.op_type for node in fused.graph.node].count("MultiHeadAttention")
    graphs = {"mask-free": embedder._onnx_session(mask_free.SerializeToString()),
              "mask-free + fused attention": embedder._onnx_session(fused.SerializeToString())}
    reference = MiniLMOnnxEmbedder(EmbeddingConfig(precision="fp32", threads=args.threads))
    tokenizer = embedder._tokenizer

    def run(session: object, encodings: list) -> np.ndarray:
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        return unit(session.run(None, feeds)[0].mean(axis=1))

    texts = load_texts(args.corpus, cut=None)
    print(f"fused layers: {layers}; nodes {len(mask_free.graph.node)} -> {len(fused.graph.node)}")
    for label, sample in (("tolerance test's texts", TEXTS), (f"{args.docs} SciFact documents", texts[: args.docs])):
        encodings = tokenizer.encode_batch(sample)
        today, new = (np.concatenate([run(s, [e]) for e in encodings]) for s in graphs.values())
        fp32 = reference.embed(sample)
        print(f"{label}: fused vs unfused min {(today * new).sum(1).min():.4f} mean {(today * new).sum(1).mean():.4f}; "
              f"to fp32: unfused {(today * fp32).sum(1).mean():.4f} / {(today * fp32).sum(1).min():.4f}, "
              f"fused {(new * fp32).sum(1).mean():.4f} / {(new * fp32).sum(1).min():.4f} (mean / min)")

    full = [e for e in tokenizer.encode_batch(texts) if len(e.ids) == TOKENS][: args.timed]
    full = full[: len(full) - len(full) % BATCH]
    batches = [full[i : i + BATCH] for i in range(0, len(full), BATCH)]
    shifted = full[BATCH // 2 :] + full[: BATCH // 2]
    vectors = {name: np.concatenate([run(s, b) for b in batches]) for name, s in graphs.items()}
    today, new = vectors.values()
    other = np.concatenate([run(graphs["mask-free"], shifted[i : i + BATCH]) for i in range(0, len(full), BATCH)])
    other = np.roll(other, BATCH // 2, axis=0)  # back in the order of `full`
    print(f"{len(batches) * BATCH} texts of {TOKENS} tokens in batches of {BATCH}: fused vs unfused min "
          f"{(today * new).sum(1).min():.4f} mean {(today * new).sum(1).mean():.4f}; unfused in other batch companions "
          f"min {(today * other).sum(1).min():.4f} mean {(today * other).sum(1).mean():.4f}")

    speeds: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(args.passes):
        for name, session in graphs.items():
            start = time.perf_counter()
            for batch in batches:
                run(session, batch)
            speeds[name].append(len(batches) * BATCH / (time.perf_counter() - start))
    for name, passes in speeds.items():
        print(f"{name:30} texts/s per pass: {' / '.join(f'{s:.1f}' for s in passes)}  (best {max(passes):.1f})")
    best = {name: max(passes) for name, passes in speeds.items()}
    print(f"fused over unfused, best passes: {best['mask-free + fused attention'] / best['mask-free']:.3f}x")


if __name__ == "__main__":
    main()
