"""The retrieval table of docs/retrieval.md: BM25 alone, dense alone, the old default and the default,
on every dataset given, through the library's own evaluation (`rag.evaluate.retrieval`, the code behind
`rag eval retrieval`): nDCG@10, Recall@10 and Recall@100 (pytrec_eval), a document ranked by its best chunk.
With --baseline-python it also times `RagPipeline.retrieve()` on the first dataset's index under this
checkout and under another one (e.g. main at b8ad658), alternating rounds in one run, and prints the ratio.

    python eval/bench_retrieval.py --dataset ../shared/datasets/scifact --dataset ../shared/datasets/drop \\
        --gold eval/gold/sample.jsonl --corpus data --holdout .rag/datasets/faq \\
        --baseline-python /work/baseline/.venv/bin/python --out eval/results/retrieval.json

Indexes are built on first use (and cached) in --cache-dir, exactly as `rag eval retrieval` does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rag.config import load_config
from rag.evaluate.datasets import BeirDataset, load_beir, load_gold_retrieval
from rag.evaluate.retrieval import ensure_index, evaluate_retrieval

REPO = Path(__file__).resolve().parents[1]
OLD_DEFAULT = ["retrieval.fusion=convex", "retrieval.normalization=minmax", "retrieval.dense_weight=0.5"]
VARIANTS: dict[str, list[str]] = {
    "BM25 alone": ["retrieval.dense_top_k=0", "retrieval.cue_weight=0"],
    "dense alone": ["retrieval.bm25_top_k=0", "retrieval.cue_weight=0"],
    "old default (convex 0.5, min-max)": [*OLD_DEFAULT, "retrieval.cue_weight=0"],
    "part-1 default (theoretical, no cues)": ["retrieval.cue_weight=0"],
    "default": [],
}
METRICS = ("nDCG@10", "Recall@10", "Recall@100")


def table(rows: list[tuple[str, dict[str, dict[str, float]]]]) -> str:
    """One markdown table: a row per dataset, per variant the three metrics."""
    header = "| dataset | " + " | ".join(f"{variant} nDCG@10 / R@10 / R@100" for variant in VARIANTS) + " |"
    lines = [header, "|---|" + "---|" * len(VARIANTS)]
    for name, results in rows:
        cells = [" / ".join(f"{results[variant][m]:.3f}" for m in METRICS) for variant in VARIANTS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure(dataset: BeirDataset, cache_dir: Path) -> dict[str, dict[str, float]]:
    configs = {variant: load_config(None, overrides) for variant, overrides in VARIANTS.items()}
    summary = evaluate_retrieval(dataset, configs, cache_dir)
    return {variant: summary["configs"][variant]["metrics"] for variant in VARIANTS}


def latency(index_dir: Path, queries: Path, pythons: dict[str, str], rounds: int) -> dict[str, Any]:
    """p50 of retrieve() per interpreter, rounds alternating between them; the ratio of the medians of p50s."""
    script = str(REPO / "eval" / "latency_retrieve.py")
    p50s: dict[str, list[float]] = {name: [] for name in pythons}
    for _ in range(rounds):
        for name, python in pythons.items():
            done = subprocess.run([python, script, "--index", str(index_dir), "--queries", str(queries)], capture_output=True, text=True, check=True)
            p50s[name].append(json.loads(done.stdout.strip().splitlines()[-1])["p50_ms"])
    result: dict[str, Any] = {name: {"p50_ms_per_round": [round(v, 2) for v in values], "p50_ms": round(statistics.median(values), 2)} for name, values in p50s.items()}
    if "baseline" in result:
        result["ratio"] = round(result["this checkout"]["p50_ms"] / result["baseline"]["p50_ms"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, action="append", default=[], help="BEIR folder (repeatable)")
    parser.add_argument("--gold", type=Path, help="JSONL answer set whose `sources` are the relevant files")
    parser.add_argument("--corpus", type=Path, default=REPO / "data", help="with --gold: the folder those files are in")
    parser.add_argument("--holdout", type=Path, action="append", default=[], help="BEIR folder kept out of tuning: reported in its own table")
    parser.add_argument("--cache-dir", type=Path, default=Path(".rag/eval-cache"))
    parser.add_argument("--baseline-python", help="interpreter of another checkout to time retrieve() against")
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds per interpreter")
    parser.add_argument("--latency-only", action="store_true", help="skip the quality table (e.g. to time under cpu-exclusive)")
    parser.add_argument("--out", type=Path, help="also write every figure as JSON")
    args = parser.parse_args()
    if not args.dataset and not args.gold and not args.holdout:
        parser.error("give at least one --dataset, --gold or --holdout")

    results: dict[str, Any] = {"variants": VARIANTS}
    tuned = [load_beir(folder) for folder in args.dataset] + ([load_gold_retrieval(args.gold, args.corpus)] if args.gold else [])
    held_out = [load_beir(folder) for folder in args.holdout]
    for title, group in (("Datasets used while choosing the default", tuned), ("Held out until the default was fixed", held_out)):
        if not group or args.latency_only:
            continue
        rows = [(f"{d.name} ({len(d.queries)} queries)", measure(d, args.cache_dir)) for d in group]
        results[title] = dict(rows)
        print(f"\n{title}\n\n{table(rows)}", flush=True)

    if args.baseline_python and args.dataset:
        first = load_beir(args.dataset[0])
        index_dir, _ = ensure_index(first, load_config(), args.cache_dir)
        pythons = {"this checkout": sys.executable, "baseline": args.baseline_python}
        results["latency"] = latency(index_dir, first.corpus.parent / "queries.jsonl", pythons, args.rounds)
        timing = results["latency"]
        print(f"\nretrieve() p50 on {first.name}: this checkout {timing['this checkout']['p50_ms']} ms, "
              f"baseline {timing['baseline']['p50_ms']} ms, ratio {timing['ratio']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
