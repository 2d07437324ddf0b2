"""`rag ingest --ray` throughput with one and with two Ray worker processes, against a plain ingest, in one run.

SciFact abstracts (default 1,000) are written one per .txt file (Ray spreads files, not the records of one JSONL
file), then each configuration ingests them into a fresh folder index with the real CLI:
  plain      `rag ingest DIR` (no Ray: one process, the model on every core)
  ray x1     a local cluster of one node with 1 CPU: one worker process
  ray x2     a head and a worker node with 1 CPU each: two worker processes
  ray x2 re  the same index again, unchanged (must embed nothing)
Wall time includes joining the cluster and each worker loading the model; the driver (scan, commits, BM25) runs
beside the workers on the same machine. Report the CPU beside the figures: on a 2-core machine the driver and two
workers share 2 cores, so "x2" shows the overlap, not what two machines would do.

    python eval/bench_ray.py [--docs 1000] [--out eval/results/ray_scifact.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from bench_ingest import cpu_kind  # light: stdlib only at import

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


def write_abstracts(corpus: Path, count: int, folder: Path) -> int:
    """The first `count` records of a BEIR corpus, one text file each (title, blank line, abstract)."""
    folder.mkdir(parents=True)
    written = 0
    with corpus.open() as lines:
        for line in lines:
            if written == count:
                break
            record = json.loads(line)
            (folder / f"{record['_id']}.txt").write_text(f"{record.get('title', '')}\n\n{record['text']}\n")
            written += 1
    return written


def ingest(folder: Path, index: Path, *extra: str) -> dict[str, object]:
    """One `rag ingest --json` in a child process: its report plus the wall seconds around it."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag", "ingest", str(folder), "--index", str(index), "--json", *extra],
                          capture_output=True, text=True, cwd=REPO, env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"), check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: some files failed (listed in the report), the rest were ingested
        raise SystemExit(f"ingest failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return {"wall_s": round(wall, 2), "ingest_s": report["seconds"], "files": report["new"] + report["changed"],
            "unchanged": report["unchanged"], "failed": report["failed_count"], "chunks": report["chunks_added"],
            "texts_embedded": report["texts_embedded"], "failed_reasons": sorted({f["reason"] for f in report["failed"]})}


@contextmanager
def cluster(nodes: int) -> Iterator[str]:
    from rag.testing.ray_cluster import local_ray_cluster

    with local_ray_cluster(nodes=nodes, cpus_per_node=1) as address:
        yield address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"no corpus at {args.corpus} (SciFact's corpus.jsonl from ../shared/datasets/scifact)")
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as work:
        folder = Path(work) / "abstracts"
        count = write_abstracts(args.corpus, args.docs, folder)
        for name, nodes in [("plain", 0), ("ray x1", 1), ("ray x2", 2)]:
            with cluster(nodes) if nodes else nullcontext("") as address:
                extra = ("--ray", address) if address else ()
                index = Path(work) / f"index-{name.replace(' ', '-')}"
                results[name] = ingest(folder, index, *extra)
                print(name, results[name], flush=True)
                if nodes == 2:  # the same files again, unchanged
                    results["ray x2 re"] = ingest(folder, index, *extra)
                    print("ray x2 re", results["ray x2 re"], flush=True)
    print(f"\n{count} SciFact abstracts as files; {os.cpu_count()} cores, CPU: {cpu_kind()}")
    print(f"{'run':<11} {'wall s':>7} {'ingest s':>8} {'files/s':>8} {'chunks/s':>8} {'embedded':>8} {'failed':>6}")
    for name, row in results.items():
        files = row["files"] or row["unchanged"]
        print(f"{name:<11} {row['wall_s']:>7} {row['ingest_s']:>8} {files / row['ingest_s']:>8.1f} {row['chunks'] / row['ingest_s']:>8.1f} {row['texts_embedded']:>8} {row['failed']:>6}")
    one, two = results["ray x1"]["ingest_s"], results["ray x2"]["ingest_s"]
    print(f"two workers vs one: {one / two:.2f}x (ingest s); plain vs two workers: {results['plain']['ingest_s'] / two:.2f}x")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"docs": count, "cpu": cpu_kind(), "runs": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
