"""Time per offline answer (issue 20 item 3: within 1.5x of b8ad658): every gold question (`eval/gold/sample.jsonl`
and `unanswerable.jsonl`, 92) asked through `RagPipeline.ask()` in one warm process per checkout, default config,
over data/ (indexed once per checkout by its own `rag ingest`: index formats differ between versions). Each round asks every question once untimed (models loaded, sentence vectors cached, as
in a server) and then once timed; rounds alternate between the checkouts, and the ratio is taken of the medians
of their per-round means.

    python eval/latency_answers.py --checkout /work/baseline --checkout . --rounds 2 [--out latency.json]

Each checkout runs this same file under its own `.venv/bin/python` (`--worker`), so only the public API is used
(`load_config`, `RagPipeline.open`, `.ask`). Printed per checkout and round: p50 / mean of the whole answer
(retrieval included) and of the answerer alone (the trace's `generation_ms`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOLD = [REPO / "eval" / "gold" / "sample.jsonl", REPO / "eval" / "gold" / "unanswerable.jsonl"]


def questions() -> list[str]:
    return [json.loads(line)["question"] for path in GOLD for line in path.read_text().splitlines() if line.strip()]


def generation_ms(trace: Any) -> float:
    """The answerer's own time from an answer's trace (an object on this branch, a dict on older checkouts)."""
    return float(trace["generation_ms"] if isinstance(trace, dict) else trace.generation_ms)


def worker(index: Path) -> None:
    """Ask every gold question untimed, then timed; print one JSON line of per-answer milliseconds."""
    from rag.config import load_config
    from rag.pipeline import RagPipeline

    total: list[float] = []
    answerer: list[float] = []
    with RagPipeline.open(index, load_config(None, ["llm.provider=none"])) as pipeline:
        for question in questions():  # warm-up
            pipeline.ask(question)
        for question in questions():
            started = time.perf_counter()
            answer = pipeline.ask(question)
            total.append((time.perf_counter() - started) * 1000)
            answerer.append(generation_ms(answer.trace))
    print(json.dumps({"total_ms": total, "answerer_ms": answerer}))


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "mean": round(statistics.fmean(values), 2)}


def build_index(checkout: Path, indexes: Path) -> Path:
    """data/ indexed by the checkout's own `rag ingest` (untimed; kept for later runs)."""
    index = indexes / f"{checkout.name}-{hashlib.sha1(str(checkout).encode()).hexdigest()[:8]}"
    if not (index / "manifest.sqlite").exists():
        print(f"indexing data/ with {checkout} into {index} ...", file=sys.stderr)
        command = [str(checkout / ".venv" / "bin" / "python"), "-m", "rag", "ingest", str(REPO / "data"), "--index", str(index)]
        done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"ingest failed in {checkout}:\n{done.stderr[-2000:]}")
    return index


def compare(checkouts: list[Path], indexes: Path, rounds: int) -> dict[str, Any]:
    """Rounds alternating between the checkouts, each a fresh warm process under the checkout's own venv."""
    runs: dict[str, list[dict[str, Any]]] = {str(c): [] for c in checkouts}
    index_of = {checkout: build_index(checkout, indexes) for checkout in checkouts}
    for round_number in range(1, rounds + 1):
        for checkout in checkouts:
            python = checkout / ".venv" / "bin" / "python"
            done = subprocess.run([str(python), __file__, "--worker", "--index", str(index_of[checkout])], cwd=checkout, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{checkout} failed:\n{done.stderr[-2000:]}")
            timed = json.loads(done.stdout.strip().splitlines()[-1])
            row = {"round": round_number, "total": summary(timed["total_ms"]), "answerer": summary(timed["answerer_ms"])}
            runs[str(checkout)].append(row)
            print(f"| {round_number} | {checkout} | {row['total']['p50']} / {row['total']['mean']} ms | "
                  f"{row['answerer']['p50']} / {row['answerer']['mean']} ms |", flush=True)
    result: dict[str, Any] = {"questions": len(questions()), "rounds": rounds, "runs": runs}
    if len(checkouts) > 1 and rounds:
        first = str(checkouts[0])
        medians = {c: statistics.median(r["total"]["mean"] for r in rows) for c, rows in runs.items()}
        result["mean_ratio_to_first"] = {c: round(m / medians[first], 3) for c, m in medians.items()}
        print(f"\nmean per answer (median of rounds) relative to {first}: {result['mean_ratio_to_first']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, action="append", default=[],
                        help="a checkout with its own .venv (repeatable; the first is the reference of the ratio); default: this one")
    parser.add_argument("--indexes", type=Path, default=REPO / ".rag" / "bench" / "latency", help="one index of data/ per checkout (built if missing)")
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)  # the worker's
    parser.add_argument("--rounds", type=int, default=2, help="timed processes per checkout, alternating (0: build the indexes only)")
    parser.add_argument("--out", type=Path, help="also write every figure as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.index)
        return
    print("| round | checkout | answer p50 / mean | answerer alone p50 / mean |\n|---|---|---|---|")
    result = compare([c.resolve() for c in args.checkout or [REPO]], args.indexes.resolve(), args.rounds)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
