"""Answer quality of the offline pipeline on the team's gold set (eval/gold/sample.jsonl).

Reports, with the default config unless --set overrides are given:
- answer accuracy on answerable questions: a reference answer string occurs in the answer (case-insensitive);
- refusals: unanswerable questions correctly answered "the documents do not contain ..." and answerable
  questions wrongly refused;
- citation validity: every citation's text equals the source's extracted text at [start:end], re-extracted
  here from the file by the loader (independent of the index);
- citation source precision: share of citations whose source is one of the question's gold sources.

    python eval/bench_answers.py --index .rag/demo [--set generation.min_support=0.5] [--out eval/results/answers_gold.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.detect import detect_type
from rag.ingest.loaders import load_file
from rag.ingest.pipeline import Ingestor
from rag.pipeline import RagPipeline

REPO = Path(__file__).resolve().parents[1]


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=REPO / "eval" / "gold" / "sample.jsonl")
    parser.add_argument("--index", type=Path, required=True, help="index of data/ (built from data/ if missing)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--show", action="store_true", help="print every question with its answer")
    args = parser.parse_args()

    config = load_config(None, args.overrides)
    if not (args.index / "manifest.sqlite").exists():
        with Index.open(args.index, config, writable=True) as index:
            Ingestor(index).ingest(["data/"])
    records = [json.loads(line) for line in args.gold.read_text().splitlines() if line.strip()]
    texts: dict[tuple[str, str], str] = {}
    rows = []
    with RagPipeline.open(args.index, config) as pipeline:
        for record in records:
            started = time.perf_counter()
            answer = pipeline.ask(record["question"])
            seconds = time.perf_counter() - started
            valid, on_gold = 0, 0
            for citation in answer.citations:
                key = (citation.source, citation.doc_id)
                if key not in texts:
                    path = REPO / citation.source
                    loaded = load_file(path, detect_type(path), config.ingest, doc_id=citation.doc_id)
                    texts[key] = next(d.text for d in loaded.documents if d.doc_id == citation.doc_id)
                valid += texts[key][citation.start : citation.end] == citation.text
                on_gold += citation.source in record["sources"]
            answerable = bool(record["sources"])
            correct = any(normalise(a) in normalise(answer.answer) for a in record["answers"]) if answerable else not answer.answered
            rows.append({
                "id": record["id"], "answerable": answerable, "answered": answer.answered, "correct": correct,
                "citations": len(answer.citations), "valid_citations": valid, "gold_source_citations": on_gold,
                "seconds": round(seconds, 3),
            })
            if args.show:
                print(f"{record['id']} {'OK ' if correct else 'BAD'} {record['question']}\n    -> {answer.answer[:300]!r}")

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    citations = sum(r["citations"] for r in rows)
    summary = {
        "questions": len(rows),
        "answer_accuracy": round(sum(r["correct"] for r in answerable) / len(answerable), 3),
        "wrongly_refused": sum(not r["answered"] for r in answerable),
        "refusal_accuracy": round(sum(r["correct"] for r in unanswerable) / max(1, len(unanswerable)), 3),
        "citations": citations,
        "citation_validity": round(sum(r["valid_citations"] for r in rows) / max(1, citations), 4),
        "citation_source_precision": round(sum(r["gold_source_citations"] for r in rows) / max(1, citations), 3),
        "answers_with_citations": round(sum(r["citations"] > 0 for r in answerable if r["answered"]) / max(1, sum(r["answered"] for r in answerable)), 3),
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 3),
        "overrides": args.overrides,
    }
    print("| figure | value |\n|---|---|")
    print(f"| answer accuracy (answerable, {len(answerable)}) | {summary['answer_accuracy']:.1%} |")
    print(f"| answerable but refused | {summary['wrongly_refused']} |")
    print(f"| correct refusals (unanswerable, {len(unanswerable)}) | {summary['refusal_accuracy']:.1%} |")
    print(f"| citation validity (span text == source text) | {summary['citation_validity']:.1%} of {citations} |")
    print(f"| citations whose source is a gold source | {summary['citation_source_precision']:.1%} |")
    print(f"| answers (not refusals) carrying citations | {summary['answers_with_citations']:.1%} |")
    print(f"| seconds per question, p50 | {summary['seconds_p50']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
