"""The bare embedding model on the runtimes that decide ingest speed, on one CPU: ours against the peers'.

Where the peers benchmark (`eval/bench_peers.py`) cannot run (a machine without LangChain, LlamaIndex or the SciFact
index), this compares just the model, which is about 90% of a full ingest: the bundled MiniLM as
`MiniLMOnnxEmbedder` runs it (the default int8 recipe, batch 8 and 32; `dynint8-r2`, with onnxruntime's
SkipLayerNormalization; r2 as before build b2, with the export's softmax NaN guards; the bundled file with fp32
compute) against a torch
fp32 BERT of MiniLM's shape run as sentence-transformers runs it (batch 32, longest texts first; the weights are
random: the speed of fp32 matrix products does not depend on them, and no download is needed). Texts: the first
`--docs` documents of a BEIR corpus, title and text cut at 1,500 characters. Prints texts/s per pass and the ratio
of the best int8 pass to the best torch pass. Needs torch and transformers (the `test` extra).

    # long-running: about 3 minutes on 2 cores
    python eval/bench_bare_runtimes.py --threads 2 --docs 400 --passes 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from rag.core.bundled import INT8_RECIPE

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


def load_texts(corpus: Path, docs: int | None = None, cut: int | None = 1500) -> list[str]:
    """Title and text of the first `docs` documents of a BEIR corpus (all: None), cut at `cut` characters (None:
    whole; the model cuts at its token window anyway)."""
    with corpus.open(encoding="utf-8") as lines:
        return [(row.get("title", "") + "\n" + row["text"])[:cut] for row in map(json.loads, islice(lines, docs))]


def ours(texts: list[str], threads: int, **settings: object) -> Callable[[], None]:
    """One pass of the bundled model through our embedder, configured as given."""
    from rag.config import EmbeddingConfig
    from rag.index.embedders.minilm import MiniLMOnnxEmbedder

    model = MiniLMOnnxEmbedder(EmbeddingConfig(threads=threads, **settings))
    model.embed(texts[:8])  # load (and build the int8 file once) outside the timed passes
    return lambda: model.embed(texts)


def ours_with_nan_guards(texts: list[str], threads: int) -> Callable[[], None]:
    """The dynint8-r2 build as it was before build b2, with the export's softmax NaN guards (minilm_int8's
    docstring), built into a scratch cache: what removing them gained on this CPU."""
    import atexit
    import shutil
    import tempfile
    from unittest import mock

    from rag.index.embedders import minilm_int8

    cache = Path(tempfile.mkdtemp(prefix="rag-guarded-model-"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    with mock.patch.object(minilm_int8, "without_softmax_nan_guards", lambda model: model):
        return ours(texts, threads, model_cache_dir=cache, int8_recipe="dynint8-r2")


def torch_fp32(texts: list[str], threads: int) -> Callable[[], None]:
    """One pass of a MiniLM-shaped fp32 BERT as sentence-transformers batches it (the peers' runtime)."""
    import torch
    from transformers import BertConfig, BertModel

    from rag.config import EmbeddingConfig
    from rag.index.embedders.minilm import model_tokenizer

    torch.set_num_threads(threads)
    shape = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    model = BertModel(shape).eval()
    encodings = model_tokenizer(EmbeddingConfig().max_tokens).encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))

    def one_pass() -> None:
        with torch.inference_mode():
            for begin in range(0, len(order), 32):
                batch = [encodings[i].ids for i in order[begin : begin + 32]]
                ids = torch.zeros((len(batch), max(map(len, batch))), dtype=torch.long)
                for row, piece_ids in enumerate(batch):
                    ids[row, : len(piece_ids)] = torch.tensor(piece_ids)
                mask = (ids != 0).long()
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                torch.nn.functional.normalize(pooled, dim=1)

    return one_pass


def timed(one_pass: Callable[[], None], texts: int, passes: int) -> list[float]:
    rates = []
    for _ in range(passes):
        started = time.perf_counter()
        one_pass()
        rates.append(texts / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a BEIR corpus.jsonl (default: SciFact)")
    parser.add_argument("--docs", type=int, default=400, help="documents to embed per pass")
    parser.add_argument("--threads", type=int, default=2, help="threads for every runtime (pin the process to as many cores)")
    parser.add_argument("--passes", type=int, default=2, help="timed passes per runtime")
    args = parser.parse_args()
    texts = load_texts(args.corpus, args.docs)
    runtimes: list[tuple[str, Callable[[], Callable[[], None]]]] = [
        (f"onnxruntime int8 ({INT8_RECIPE}), batch 8", lambda: ours(texts, args.threads)),
        (f"onnxruntime int8 ({INT8_RECIPE}), batch 32", lambda: ours(texts, args.threads, batch_size=32)),
        ("onnxruntime int8 (dynint8-r2: SkipLayerNorm fused)", lambda: ours(texts, args.threads, int8_recipe="dynint8-r2")),
        ("onnxruntime int8 (dynint8-r2 before b2: NaN guards)", lambda: ours_with_nan_guards(texts, args.threads)),
        ("onnxruntime, bundled file (fp32 compute), batch 8", lambda: ours(texts, args.threads, precision="fp32")),
        ("torch fp32, batch 32 (the peers' runtime)", lambda: torch_fp32(texts, args.threads)),
    ]
    best: dict[str, float] = {}
    for label, prepare in runtimes:
        rates = timed(prepare(), len(texts), args.passes)
        best[label] = max(rates)
        print(f"{label:<52} " + " / ".join(f"{rate:.1f}" for rate in rates) + " texts/s", flush=True)
    int8 = max(best[label] for label, _ in runtimes[:2])  # the build the ingest runs
    print(f"best int8 pass over best torch fp32 pass: {int8 / best[runtimes[-1][0]]:.2f}x")


if __name__ == "__main__":
    main()
