"""Side by side on the same job: this project, LangChain's and LlamaIndex's standard RAG recipes.

Each system ingests the same BEIR corpus (default SciFact from ../shared) with the same chunk size and
overlap (in MiniLM tokens) and the same embedding model (all-MiniLM-L6-v2, from bundled packages, no
download), then answers the same queries without an LLM. Every phase runs in its own process, so wall
time includes imports and model loading as a user sees them, and peak RSS is that process's:
  ingest    full ingest from an empty folder: wall time, peak RSS;
  reingest  the unchanged corpus again, with each system's own incremental mechanism (this project: its
            manifest; LangChain: index() + SQLRecordManager; LlamaIndex: IngestionPipeline + docstore);
  query     each query once, in one process after a warm-up query: latency p50/p95 of fetching the
            top-200 chunks, and nDCG@10 / Recall@100 (pytrec_eval) with document = its best chunk.
Systems run interleaved (round 1 in order, round 2 reversed, ...) to cancel drift on a shared machine.
Recipes: eval/peers/. Needs the peers: pip install -e ".[bench-peers]".

    python eval/bench_peers.py --dataset ../shared/datasets/scifact --rounds 2
    python eval/bench_peers.py --limit 300 --rounds 1 --out /tmp/peers.json   # a quick development run
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_ingest import cpu_kind, run_measured

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact"
SYSTEMS = {"rag": "peers.ours", "langchain": "peers.langchain_recipe", "llamaindex": "peers.llamaindex_recipe"}
LABELS = {"rag": "rag (this project)", "langchain": "LangChain", "llamaindex": "LlamaIndex"}
VERSIONED = [
    "onnxruntime", "chromadb", "tokenizers", "torch", "transformers", "sentence-transformers",
    "langchain-core", "langchain-classic", "langchain-text-splitters", "langchain-chroma", "langchain-huggingface",
    "llama-index-core", "llama-index-vector-stores-chroma", "llama-index-embeddings-huggingface",
]
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}


# --- worker side: one phase of one system, in its own process --------------------------------
def work(system: str, phase: str, corpus: Path, workdir: Path, dataset: Path, split: str) -> dict[str, Any]:
    recipe = importlib.import_module(SYSTEMS[system])
    if phase in ("ingest", "reingest"):  # the same call: on a folder that holds the corpus it is the re-ingest
        return recipe.ingest(corpus, workdir)
    from rag.evaluate.datasets import load_beir

    queries = load_beir(dataset, split).queries
    started = time.perf_counter()
    search = recipe.open_search(workdir)
    search("warm up")
    open_s = time.perf_counter() - started
    latencies, run = [], {}
    for query_id, text in queries.items():
        started = time.perf_counter()
        doc_ids = search(text)
        latencies.append((time.perf_counter() - started) * 1000)
        run[query_id] = best_chunk_ranking(doc_ids)
    return {"open_s": open_s, "latencies_ms": latencies, "run": run}


def best_chunk_ranking(doc_ids: list[str], depth: int = 100) -> dict[str, float]:
    """Document ranking from a chunk ranking (a document ranks where its best chunk does), as trec_eval scores."""
    ranked: dict[str, float] = {}
    for position, doc_id in enumerate(doc_ids):
        if doc_id not in ranked and len(ranked) < depth:
            ranked[doc_id] = float(len(doc_ids) - position)
    return ranked


# --- orchestrator side -----------------------------------------------------------------------
def run_phase(system: str, phase: str, corpus: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", system, "--phase", phase, "--corpus", str(corpus),
               "--work", str(workdir), "--dataset", str(args.dataset), "--split", args.split]
    load_before = os.getloadavg()[0]
    wall_s, peak_mb, stdout = run_measured(command)
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall_s=wall_s, peak_rss_mb=peak_mb, loadavg_before=load_before, loadavg_after=os.getloadavg()[0])
    print(f"  {system:<10} {phase:<8} {wall_s:8.2f} s  peak RSS {peak_mb:6.0f} MB  load {load_before:.2f} -> {result['loadavg_after']:.2f}",
          file=sys.stderr, flush=True)
    return result


def run_rounds(corpus: Path, args: argparse.Namespace, scratch: Path, save: Callable[[list[dict[str, Any]], bool], None]) -> None:
    """Every round, every system: ingest, re-ingest, query. Results are saved after each system, so a run cut short keeps its data."""
    from rag.evaluate.datasets import load_beir
    from rag.evaluate.metrics import mean_metrics, retrieval_metrics

    qrels = load_beir(args.dataset, args.split).qrels
    runs: list[dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        order = args.systems if round_number % 2 else list(reversed(args.systems))
        print(f"round {round_number}: {', '.join(order)}", file=sys.stderr, flush=True)
        for system in order:
            workdir = scratch / f"{system}-{round_number}"
            ingest = run_phase(system, "ingest", corpus, workdir, args)
            reingest = run_phase(system, "reingest", corpus, workdir, args)
            query = run_phase(system, "query", corpus, workdir, args)
            metrics = mean_metrics(retrieval_metrics(query.pop("run"), qrels))
            latencies = sorted(query.pop("latencies_ms"))
            query.update(p50_ms=statistics.median(latencies), p95_ms=latencies[int(0.95 * (len(latencies) - 1))],
                         queries=len(latencies), nDCG_at_10=metrics["nDCG@10"], recall_at_100=metrics["Recall@100"])
            runs.append({"system": system, "round": round_number, "ingest": ingest, "reingest": reingest, "query": query})
            shutil.rmtree(workdir, ignore_errors=True)
            save(runs, False)
    save(runs, True)


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per system: the mean over rounds of each timing, the largest peak RSS, and the retrieval metrics.

    Only rounds that every system finished count (when there is one), so a run cut short stays balanced.
    """
    systems = set(run["system"] for run in runs)
    finished = [r for r in {run["round"] for run in runs} if {run["system"] for run in runs if run["round"] == r} == systems]
    runs = [run for run in runs if run["round"] in finished] or runs
    summary: dict[str, dict[str, float]] = {}
    for system in dict.fromkeys(run["system"] for run in runs):
        mine = [run for run in runs if run["system"] == system]
        mean = lambda phase, key: round(statistics.mean(run[phase][key] for run in mine), 3)  # noqa: E731
        summary[system] = {
            "ingest_s": mean("ingest", "wall_s"),
            "ingest_peak_rss_mb": round(max(run["ingest"]["peak_rss_mb"] for run in mine)),
            "chunks": mine[0]["ingest"]["chunks"],
            "reingest_s": mean("reingest", "wall_s"),
            "reingest_embedded": max(run["reingest"]["embedded"] for run in mine),
            "rounds": len(mine),
            "query_p50_ms": mean("query", "p50_ms"),
            "query_p95_ms": mean("query", "p95_ms"),
            "nDCG@10": mean("query", "nDCG_at_10"),
            "Recall@100": mean("query", "recall_at_100"),
        }
    return summary


ROWS = [  # (label, key, format, lower is better, target for rag as a ratio peer/rag, or None)
    ("full ingest, wall time (s)", "ingest_s", "{:.1f}", True, 2.5),  # issue 19: 2.5x both peers on each CPU kind
    ("full ingest, peak RSS (MB)", "ingest_peak_rss_mb", "{:.0f}", True, None),
    ("chunks", "chunks", "{:.0f}", None, None),
    ("re-ingest unchanged corpus, wall time (s)", "reingest_s", "{:.2f}", True, 10.0),
    ("re-ingest: chunks embedded again", "reingest_embedded", "{:.0f}", None, None),
    ("query p50 (ms)", "query_p50_ms", "{:.1f}", True, 1.0),
    ("query p95 (ms)", "query_p95_ms", "{:.1f}", True, None),
    ("nDCG@10", "nDCG@10", "{:.3f}", False, 1.0),
    ("Recall@100", "Recall@100", "{:.3f}", False, None),
]


def table(summary: dict[str, dict[str, float]]) -> str:
    """Markdown table; ratio columns say how many times better rag is (peer / rag for costs, rag / peer for quality)."""
    lines = ["| figure | rag | LangChain | LlamaIndex | rag vs LangChain | rag vs LlamaIndex | target |", "|---|---|---|---|---|---|---|"]
    for label, key, fmt, lower_better, target in ROWS:
        cells = [fmt.format(summary[system][key]) for system in SYSTEMS]
        ratios = []
        for peer in ("langchain", "llamaindex"):
            ours, theirs = summary["rag"][key], summary[peer][key]
            if lower_better is None or not ours or not theirs:
                ratios.append("")
            else:
                ratio = theirs / ours if lower_better else ours / theirs
                met = "" if target is None else (" ✓" if ratio >= target and (lower_better or ours > theirs) else " ✗")
                ratios.append(f"{ratio:.2f}x{met}")
        goal = "" if target is None else ("above both" if lower_better is False else f">= {target:g}x")
        lines.append(f"| {label} | {' | '.join(cells)} | {' | '.join(ratios)} | {goal} |")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def prepare_corpus(dataset: Path, limit: int | None, scratch: Path) -> Path:
    corpus = dataset / "corpus.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"{corpus} not found: give --dataset a BEIR folder (SciFact lives in ../shared/datasets/scifact)")
    if limit is None:
        return corpus
    subset = scratch / "corpus.jsonl"
    with corpus.open(encoding="utf-8") as source, subset.open("w", encoding="utf-8") as target:
        for number, line in enumerate(source):
            if number >= limit:
                break
            target.write(line)
    return subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; even rounds run the systems in reverse order")
    parser.add_argument("--systems", type=lambda text: text.split(","), default=list(SYSTEMS),
                        help=f"comma-separated subset of {','.join(SYSTEMS)} (development runs; the table needs all three)")
    parser.add_argument("--limit", type=int, help="only the first N corpus documents (quick runs; metrics then mean little)")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "peers_scifact.json")
    parser.add_argument("--table", type=Path, metavar="RESULTS_JSON", help="only print the table of an earlier run's results")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["ingest", "reingest", "query"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)

    if args.worker:
        print(json.dumps(work(args.worker, args.phase, args.corpus, args.work, args.dataset, args.split)))
        return
    if args.table:
        print(table(summarise(json.loads(args.table.read_text())["runs"])))
        return

    from rag.index.embedders.minilm_int8 import model_cache_dir, quantized_model_path

    quantized_model_path(model_cache_dir())  # the one-off local build of rag's int8 model is not part of any timing
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = os.getloadavg()

    def save(runs: list[dict[str, Any]], complete: bool) -> None:
        results = {
            "dataset": str(args.dataset), "split": args.split, "limit": args.limit, "rounds": args.rounds, "complete": complete,
            "started": started, "loadavg_start": load_start, "loadavg_now": os.getloadavg(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "cpu_kind": cpu_kind()},
            "versions": versions(), "summary": summarise(runs), "runs": runs,
            "command": "python eval/bench_peers.py " + " ".join(sys.argv[1:]),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        if complete:
            summary = results["summary"]
            print(f"CPU kind: {cpu_kind()}")
            print(table(summary) if set(summary) == set(SYSTEMS) else json.dumps(summary, indent=2))
            print(f"\nraw results: {args.out}")

    with tempfile.TemporaryDirectory(prefix="rag-peers-") as scratch:
        run_rounds(prepare_corpus(args.dataset, args.limit, Path(scratch)), args, Path(scratch), save)


if __name__ == "__main__":
    main()
