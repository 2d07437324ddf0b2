"""Ingestion benchmark on a BEIR corpus (default: SciFact from ../shared), with the default config or the one the
environment gives (`RAG_EMBEDDING__PROVIDER=static python eval/bench_ingest.py`: the fast profile).

Measures, each in its own process so peak RSS is per phase:
  1. full ingest from nothing (`rag ingest corpus.jsonl`): wall time, docs/s, chunks/s, peak RSS;
  2. the bare embedding model on exactly the chunks the pipeline produced (no cache, no store): texts/s;
  3. re-ingest of the unchanged corpus: wall time and its share of the full ingest.
Targets (issue 2): pipeline >= 80% of the bare model's throughput; re-ingest < 5% of full ingest.

    python eval/bench_ingest.py [--corpus ../shared/datasets/scifact/corpus.jsonl] [--out eval/results/ingest_scifact.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"

BARE_MODEL = """
import json, resource, sqlite3, sys, time
from rag.config import load_config
from rag.index.embedders import build_embedder
texts = [row[0] for row in sqlite3.connect(sys.argv[1]).execute("SELECT text FROM chunks")]
model = build_embedder(load_config().embedding)  # the configured model ($RAG_EMBEDDING__PROVIDER, __RUNTIME etc.)
model.embed(texts[:8])  # load and warm up outside the timed part
started = time.perf_counter()
model.embed(texts)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"texts": len(texts), "seconds": seconds, "peak_rss_mb": peak}))
"""


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Run a command; return wall seconds, that child's own peak RSS in MB, and its stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"command failed ({process.returncode}): {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024, stdout


def cpu_kind() -> str:
    """The instruction-set flags that decide which int8/bf16 kernels run, and the CPU's generation (vendor, family,
    model, from /proc/cpuinfo): machines with the same flags differ by generation, and a virtual machine's model
    name may not say which (an AMD Zen 4 ran the int8 model at about half a Zen 5's speed; docs/embeddings.md)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return platform.machine()
    info = {key.strip(): value.strip() for key, value in fields.items()}
    if "flags" not in info:
        return platform.machine()
    flags = info["flags"].split()
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"]
    kind = " ".join(flag for flag in wanted if flag in flags) or "no AVX2"
    kind += f"; {info.get('model name', '?')}, {info.get('vendor_id', '?')} family {info.get('cpu family', '?')} model {info.get('model', '?')}"
    proxied = os.environ.get("RAG_AVX2_PROXY")  # eval/avx2_proxy: these packages chose their AVX2 code paths
    return f"AVX2 proxy ({proxied} see avx2 only) on {kind}" if proxied else kind


def model_id() -> str:
    from rag.config import load_config

    return load_config().embedding.model_id()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "results" / "ingest_scifact.json")
    parser.add_argument("--keep-index", type=Path, help="Build the index here and keep it (default: a temp folder).")
    args = parser.parse_args()
    if not args.corpus.is_file():
        raise SystemExit(f"corpus not found: {args.corpus} (the BEIR SciFact copy lives in ../shared/datasets/scifact)")

    workdir = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    index = args.keep_index or workdir / "index"
    shutil.rmtree(index, ignore_errors=True)
    rag = [sys.executable, "-m", "rag", "ingest", str(args.corpus), "--index", str(index), "--json"]

    full_s, full_rss, full_out = run_measured(rag)
    full = json.loads(full_out)
    bare_s, _, bare_out = run_measured([sys.executable, "-c", BARE_MODEL, str(index / "manifest.sqlite")])
    bare = json.loads(bare_out)
    again_s, _, again_out = run_measured(rag)
    again = json.loads(again_out)

    with __import__("sqlite3").connect(index / "manifest.sqlite") as db:
        documents = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    bare_rate = bare["texts"] / bare["seconds"]
    results = {
        "corpus": str(args.corpus),
        "documents": documents,
        "chunks": chunks,
        "full_ingest": {
            "wall_s": round(full_s, 1),
            "docs_per_s": round(documents / full_s, 1),
            "chunks_per_s": round(chunks / full_s, 1),
            "peak_rss_mb": round(full_rss),
            "texts_embedded": full["texts_embedded"],
        },
        "bare_model": {"texts_per_s": round(bare_rate, 1), "seconds": round(bare["seconds"], 1), "peak_rss_mb": round(bare["peak_rss_mb"])},
        "pipeline_vs_bare": round((chunks / full_s) / bare_rate, 3),
        "reingest": {
            "wall_s": round(again_s, 2),
            "share_of_full": round(again_s / full_s, 4),
            "texts_embedded": again["texts_embedded"],
            "unchanged": again["unchanged"],
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "cpu_kind": cpu_kind()},
        "embedding_model": model_id(),
        "command": "python eval/bench_ingest.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"CPU kind: {cpu_kind()}; embedding model: {model_id()}\n")
    print("| figure | value |\n|---|---|")
    print(f"| documents / chunks | {documents} / {chunks} |")
    print(f"| full ingest wall time | {full_s:.1f} s |")
    print(f"| docs/s, chunks/s | {documents / full_s:.1f}, {chunks / full_s:.1f} |")
    print(f"| peak RSS (full ingest) | {full_rss:.0f} MB |")
    print(f"| bare model on the same chunks | {bare_rate:.1f} texts/s |")
    print(f"| pipeline / bare model throughput | {results['pipeline_vs_bare']:.0%} (target >= 80%) |")
    print(f"| re-ingest unchanged | {again_s:.2f} s = {again_s / full_s:.1%} of full (target < 5%), {again['texts_embedded']} embedded |")
    if not args.keep_index:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
