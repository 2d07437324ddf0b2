"""p50/p95 of `RagPipeline.retrieve()` in-process, default config, one index, every query of a BEIR set.

Written against the public API only (`load_config`, `RagPipeline.open`, `.retrieve`) so that the same file
runs under another checkout's interpreter: `eval/bench_retrieval.py --baseline-python` runs it under both,
alternating rounds on one index, and reports the ratio.

    python eval/latency_retrieve.py --index .rag/eval-cache/scifact-XXXX --queries ../shared/datasets/scifact/queries.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="queries.jsonl ({_id, text} per line)")
    parser.add_argument("--limit", type=int, default=300, help="queries timed (the first N)")
    args = parser.parse_args()

    from rag.config import load_config
    from rag.pipeline import RagPipeline

    queries = [json.loads(line)["text"] for line in args.queries.read_text().splitlines() if line.strip()][: args.limit]
    timings: list[float] = []
    with RagPipeline.open(args.index, load_config(None, ["llm.provider=none"])) as pipeline:
        for query in queries[:20]:  # warm-up: models loaded, caches filled
            pipeline.retrieve(query)
        for query in queries:
            started = time.perf_counter()
            pipeline.retrieve(query)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    print(json.dumps({"p50_ms": statistics.median(timings), "p95_ms": timings[int(0.95 * (len(timings) - 1))], "queries": len(timings)}))


if __name__ == "__main__":
    main()
