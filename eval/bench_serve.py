"""Load test of `rag serve` on loopback: throughput and latency, during an ingest, and the cost of permissions.

Starts `rag serve` on 127.0.0.1 (a free port) over an existing index, creates two temporary keys
(admin and a `staff` key with no extra groups, so it reads only documents without groups), and measures:
  1. /v1/retrieve and /v1/ask at 1, 4 and 16 concurrent clients: requests/s, p50/p95/p99, errors;
  2. the same mix at 4 clients while an admin ingests new documents through /v1/ingest: errors,
     latency change, and a check that every passage returned was an exact span of a fully written
     document (compared with the manifest after the run);
  3. permission cost: /v1/retrieve p50 at 1 client for the admin key (no restriction) vs the staff key,
     and the dense-search strategies in-process (unfiltered HNSW, the shipped over-fetch/exact path,
     a Chroma `where` filter, exact search over the allowed vectors).
Every phase is bounded by --requests and --max-seconds. The new documents are removed and the keys
revoked at the end, so the index is left as it was (apart from revoked key rows).

    python eval/bench_serve.py --index .rag/demo --queries eval/gold/sample.jsonl --query-field question \
        --out eval/results/serve_sample.json
    python eval/bench_serve.py --index .rag/scifact-groups --queries ../shared/datasets/scifact/queries.jsonl \
        --query-field text --new-docs ../shared/datasets/scifact/corpus.jsonl --out eval/results/serve_scifact.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
LEVELS = (1, 4, 16)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[position]


def summary(latencies: list[float], errors: list[str], seconds: float) -> dict[str, Any]:
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(latencies) / seconds, 2) if seconds else None,
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
    }


class Load:
    """`clients` threads send requests round-robin over `bodies` until `requests` or `max_seconds` is reached."""

    def __init__(self, url: str, key: str, path: str, bodies: list[dict[str, Any]], clients: int, requests: int, max_seconds: float) -> None:
        self.url, self.key, self.path, self.bodies = url, key, path, bodies
        self.clients, self.requests, self.max_seconds = clients, requests, max_seconds
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.responses: list[dict[str, Any]] = []
        self._next = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def _take(self) -> dict[str, Any] | None:
        with self._lock:
            if self._next >= self.requests or self.stop.is_set():
                return None
            body = self.bodies[self._next % len(self.bodies)]
            self._next += 1
            return body

    def _client(self, deadline: float) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=300) as client:
            while time.perf_counter() < deadline:
                body = self._take()
                if body is None:
                    return
                started = time.perf_counter()
                try:
                    response = client.post(self.path, json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                with self._lock:
                    if response.status_code == 200:
                        self.latencies.append(elapsed)
                        self.responses.append(response.json())
                    else:
                        self.errors.append(f"{response.status_code}: {response.text[:200]}")

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        deadline = started + self.max_seconds
        threads = [threading.Thread(target=self._client, args=(deadline,)) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return summary(self.latencies, self.errors, time.perf_counter() - started)


def interleaved(url: str, keys: dict[str, str], bodies: list[dict[str, Any]], requests: int, max_seconds: float) -> dict[str, Any]:
    """/v1/retrieve latency per key, one client sending each query with every key in turn."""
    latencies: dict[str, list[float]] = {name: [] for name in keys}
    errors: dict[str, list[str]] = {name: [] for name in keys}
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=300) as client:
        for position in range(requests):
            if time.perf_counter() - started > max_seconds:
                break
            for name, key in keys.items():
                begin = time.perf_counter()
                response = client.post("/v1/retrieve", json=bodies[position % len(bodies)], headers={"Authorization": f"Bearer {key}"})
                (latencies[name] if response.status_code == 200 else errors[name]).append(time.perf_counter() - begin)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return {name: summary(latencies[name], [str(e) for e in errors[name]], seconds / len(keys)) for name in keys}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rag(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=Path.cwd())
    if result.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def start_server(index: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--index", str(index), "--port", str(port), "--set", "serve.pipelines=4"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit("server exited:\n" + log.read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    raise SystemExit("server did not start")


def load_queries(path: Path, field: str, limit: int) -> list[str]:
    queries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            queries.append(str(json.loads(line)[field]))
        if len(queries) >= limit:
            break
    return queries


def new_documents(source: Path | None, count: int, run: str) -> list[dict[str, Any]]:
    """Documents not in the index yet, with text unique to this run (so nothing comes from the embedding cache):
    the last records of `source` re-labelled, else synthetic memos."""
    if source is None:
        return [
            {"id": f"bench-memo-{i}", "title": f"Memo {i}", "text": f"Memo {i} of run {run}: the quarterly planning session {i} meets in room {i}. " * 8}
            for i in range(count)
        ]
    documents = []
    for line in source.read_text(encoding="utf-8").splitlines()[-count:]:
        record = json.loads(line)
        documents.append({"id": f"bench-new-{record['_id']}", "title": record.get("title", ""), "text": f"Revised abstract ({run}). " + record["text"]})
    return documents


def check_spans(index: Path, responses: list[dict[str, Any]]) -> dict[str, int]:
    """Every passage or ranked chunk returned must be an exact span of a committed document's text."""
    db = sqlite3.connect(f"file:{index / 'manifest.sqlite'}?mode=ro", uri=True)
    key_of = dict(db.execute("SELECT display_path, path FROM sources").fetchall())
    checked = mismatched = 0
    cache: dict[tuple[str, str], str | None] = {}
    for response in responses:
        for item in response.get("passages") or response.get("results") or []:
            key = (key_of.get(item["source"], item["source"]), item["doc_id"])
            if key not in cache:
                row = db.execute("SELECT text FROM documents WHERE source = ? AND doc_id = ?", key).fetchone()
                cache[key] = row[0] if row else None
            text = cache[key]
            checked += 1
            if text is None or text[item["start"] : item["end"]] != item["text"]:
                mismatched += 1
    db.close()
    return {"spans_checked": checked, "spans_not_matching_a_committed_document": mismatched}


def dense_strategies(index: Path, queries: list[str], group: str) -> dict[str, Any]:
    """p50 of one dense query per strategy, for a reader of documents without groups (in-process, no HTTP)."""
    from rag.config import load_config
    from rag.index.store import Index
    from rag.retrieve.access import SNAPSHOTS, Access
    from rag.retrieve.search import HybridSearcher

    config = load_config()
    with Index.open(index, config) as opened:
        searcher = HybridSearcher(opened, config.retrieval)
        snapshot = SNAPSHOTS.current(opened.manifest)
        visible = snapshot.visible(Access.of_groups((group,)))
        public_docs = sorted({r[0] for r in opened.manifest.db.execute("SELECT doc_id FROM documents WHERE groups = '[]'")})
        vectors = opened.query_embedder.embed(queries)  # type: ignore[attr-defined]
        store = opened.vectors
        k = config.retrieval.dense_top_k
        strategies = {
            "unfiltered_hnsw": lambda v: store.query(v, k),  # type: ignore[attr-defined]
            "shipped_path": lambda v: searcher._dense(v, visible, snapshot),
            "chroma_where_doc_id_in": lambda v: store.query(v, k, where={"doc_id": {"$in": public_docs}}),  # type: ignore[attr-defined]
            "exact_over_allowed_vectors_cached": lambda v: searcher._exact(v, k, visible),
        }
        results: dict[str, Any] = {"visible_chunks": len(visible), "all_chunks": len(snapshot.committed)}
        readers = {"unrestricted": Access.unrestricted(), "restricted": Access.of_groups((group,))}
        search_ms: dict[str, list[float]] = {name: [] for name in readers}
        for query in queries[:3]:
            for access in readers.values():
                searcher.search([query], access=access)  # builds the per-group BM25 and vector caches
        for query in queries:
            for name, access in readers.items():
                started = time.perf_counter()
                searcher.search([query], access=access)
                search_ms[name].append((time.perf_counter() - started) * 1000)
        results["hybrid_search_p50_ms_in_process"] = {name: round(statistics.median(v), 2) for name, v in search_ms.items()}
        reference = [set(c for c, _ in searcher._exact(v, 10, visible)) for v in vectors]
        for name, run in strategies.items():
            run(vectors[0])
            timings, recall = [], []
            for position, vector in enumerate(vectors):
                started = time.perf_counter()
                hits = run(vector)
                timings.append((time.perf_counter() - started) * 1000)
                top = [c for c, _ in hits if c in visible][:10]
                recall.append(len(set(top) & reference[position]) / max(len(reference[position]), 1))
            results[name] = {"p50_ms": round(statistics.median(timings), 2), "recall_at_10_vs_exact": round(statistics.mean(recall), 4)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="JSON Lines of questions.")
    parser.add_argument("--query-field", default="question")
    parser.add_argument("--query-count", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200, help="Most requests per measurement.")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="Longest time per measurement.")
    parser.add_argument("--new-docs", type=Path, help="JSON Lines whose last --new-count records are re-ingested as new documents.")
    parser.add_argument("--new-count", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    queries = load_queries(args.queries, args.query_field, args.query_count)
    stamp = f"{os.getpid()}"
    admin = json.loads(rag("keys", "create", "--index", str(args.index), "--name", f"bench-admin-{stamp}", "--admin", "--json"))["key"]
    staff = json.loads(rag("keys", "create", "--index", str(args.index), "--name", f"bench-staff-{stamp}", "--groups", "staff", "--json"))["key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(f"/tmp/bench_serve_{stamp}.log")
    server = start_server(args.index, port, log)
    results: dict[str, Any] = {
        "index": str(args.index),
        "queries": str(args.queries),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "note": "2 shared cores; other work was running"},
        "generator": "offline extractive",
        "levels": {},
    }
    try:
        bodies = {"/v1/retrieve": [{"query": q, "top_k": 10} for q in queries], "/v1/ask": [{"question": q} for q in queries]}
        Load(url, staff, "/v1/retrieve", bodies["/v1/retrieve"][:5], 1, 5, 60).run()  # warm up every pipeline's models
        Load(url, staff, "/v1/ask", bodies["/v1/ask"][:8], 4, 8, 120).run()
        for path in ("/v1/retrieve", "/v1/ask"):
            for clients in LEVELS:
                measured = Load(url, staff, path, bodies[path], clients, args.requests, args.max_seconds).run()
                results["levels"][f"{path} x{clients}"] = measured
                print(f"{path:14} clients={clients:2}  {measured['requests_per_s']:7} req/s  p50 {measured['p50_ms']:7} ms  "
                      f"p95 {measured['p95_ms']:7} ms  p99 {measured['p99_ms']:7} ms  errors {measured['errors']}", flush=True)

        # 2. the same queries while an ingest runs
        documents = new_documents(args.new_docs, args.new_count, f"{stamp}-{time.time():.0f}")
        ingest_result: dict[str, Any] = {}

        def ingest() -> None:
            started = time.perf_counter()
            response = httpx.post(url + "/v1/ingest", json={"name": f"bench-{stamp}", "documents": documents}, headers={"Authorization": f"Bearer {admin}"}, timeout=3600)
            ingest_result.update(status=response.status_code, seconds=round(time.perf_counter() - started, 1), report=response.json())

        during: dict[str, Any] = {}
        loads = {path: Load(url, staff, path, bodies[path], 2, 10**9, 3600) for path in bodies}
        writer = threading.Thread(target=ingest)
        runners = {path: threading.Thread(target=lambda p=path: during.update({p: loads[p].run()})) for path in loads}
        writer.start()
        for runner in runners.values():
            runner.start()
        writer.join()
        for load in loads.values():
            load.stop.set()
        for runner in runners.values():
            runner.join()
        spans = check_spans(args.index, [r for load in loads.values() for r in load.responses])
        results["during_ingest"] = {
            "documents_ingested": len(documents),
            "ingest": {k: v for k, v in ingest_result.items() if k != "report"} | {"chunks_added": ingest_result.get("report", {}).get("chunks_added")},
            "clients": "2 on /v1/retrieve + 2 on /v1/ask",
            **{path: stats for path, stats in during.items()},
            **spans,
        }
        print("during ingest:", json.dumps(results["during_ingest"]), flush=True)
        removed = httpx.post(
            url + "/v1/remove", json={"paths": [str(args.index / "uploads" / f"bench-{stamp}.jsonl")]},
            headers={"Authorization": f"Bearer {admin}"}, timeout=3600,
        )
        results["during_ingest"]["removed_afterwards"] = removed.json().get("removed")

        # 3. permission cost: one client alternating the two keys over the same queries, so load drift hits both alike
        cost = interleaved(url, {"admin (no restriction)": admin, "staff (documents without groups only)": staff}, bodies["/v1/retrieve"], args.requests, args.max_seconds)
        results["permission_cost_retrieve_x1_interleaved"] = cost
        print("permission cost:", json.dumps({k: v["p50_ms"] for k, v in cost.items()}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        rag("keys", "revoke", f"bench-admin-{stamp}", "--index", str(args.index))
        rag("keys", "revoke", f"bench-staff-{stamp}", "--index", str(args.index))
    results["dense_strategies"] = dense_strategies(args.index, queries, "staff")
    print("dense strategies:", json.dumps(results["dense_strategies"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
