"""How many padded tokens the embedding model processes for an index's chunks, per way of forming batches.

Deterministic (no timing): the model's work grows with batch width x batch size (attention with its square),
so padding is wasted time on any CPU. Compares length sorting by characters with sorting by token count, within
each 256-text writer step and over the whole batch.

    python eval/padding.py INDEX_FOLDER        # e.g. one kept by: python eval/bench_ingest.py --keep-index DIR
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

STEP = 256  # rag.index.writer.EMBED_STEP


def padded(token_counts: np.ndarray, groups: list[np.ndarray], key: Callable[[int], int], batch: int) -> tuple[int, int]:
    """Padded tokens and padded tokens squared (attention) when each group is sorted by `key` and cut into batches."""
    tokens = squares = 0
    for group in groups:
        ordered = sorted(group.tolist(), key=key)
        for begin in range(0, len(ordered), batch):
            widths = token_counts[ordered[begin : begin + batch]]
            tokens += int(widths.max()) * len(widths)
            squares += int(widths.max()) ** 2 * len(widths)
    return tokens, squares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path)
    parser.add_argument("--batch", type=int, default=8, help="texts per model call (the local default: 8)")
    args = parser.parse_args()
    from rag.config import load_config
    from rag.core.bundled import load_tokenizer

    texts = [row[0] for row in sqlite3.connect(args.index / "manifest.sqlite").execute("SELECT text FROM chunks ORDER BY rowid")]
    tokenizer = load_tokenizer()
    tokenizer.enable_truncation(max_length=load_config().embedding.max_tokens)
    counts = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    everything = np.arange(len(texts))
    steps = [everything[begin : begin + STEP] for begin in range(0, len(texts), STEP)]
    by_chars, by_tokens = (lambda i: len(texts[i])), (lambda i: int(counts[i]))
    real = int(counts.sum())
    rows = {}
    for name, groups, key in [
        ("characters, per 256-text step", steps, by_chars),
        ("characters, whole batch", [everything], by_chars),
        ("tokens, per 256-text step", steps, by_tokens),
        ("tokens, whole batch", [everything], by_tokens),
    ]:
        tokens, squares = padded(counts, groups, key, args.batch)
        rows[name] = {"padded_tokens": tokens, "padding_share": round(1 - real / tokens, 4), "attention_tokens_sq": squares}
    print(json.dumps({"texts": len(texts), "real_tokens": real, "batch": args.batch, "sorted_by": rows}, indent=2))


if __name__ == "__main__":
    main()
