"""Offline answer quality on every answer set at hand: the gold set over data/, span-answer dev sets, DROP.

One row per set, the table of issue 20:
- answer contains the reference: SQuAD-style normalisation (lower case, punctuation and articles removed) of the
  answer text without its [n] markers contains a normalised reference answer; yes/no questions excluded (they are
  scored as "starts with the right Yes/No" in their own column);
- words per answer: the mean length of the answered answerable questions' answers, in words of that normalised
  text (a longer answer holds the reference more often, so the two columns are read together);
- judge correctness: the project's `answer_correctness` (`rag eval answers`: case/space-insensitive containment);
  `disagree` counts questions where the two measures differ;
- refused though answerable, correct refusals (unanswerable questions), context recall (offline judge), citation
  precision (offline judge), citation validity (every citation's text equals the source re-extracted from the file
  by the loader, independent of the index), seconds per answer (p50 and mean).

The script uses whichever `rag` its interpreter imports, so the same script measures main before a change:

    python eval/build_span_devsets.py --bigbench bigbench-1.0.0.tar.gz --out .rag/devsets   # once
    /work/baseline/.venv/bin/python eval/bench_answers.py --label before --out eval/results/answers_before.json
    .venv/bin/python eval/bench_answers.py --label after --out eval/results/answers_after.json
    .venv/bin/python eval/bench_answers.py --compare eval/results/answers_before.json eval/results/answers_after.json

Indexes are built once per set under --indexes (default .rag/bench/<set>) with the default config.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import string
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
YES_NO = re.compile(r"^(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|must|may)\b", re.I)


def squad_normalise(text: str) -> str:
    text = re.sub(r"\s*\[\d+(?:\s*,\s*\d+)*\]", " ", text.lower())
    text = "".join(" " if ch in string.punctuation or ch in "\u2018\u2019\u201c\u201d" else ch for ch in text)
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def contains_reference(answer: str, references: list[str]) -> bool:
    normalised = squad_normalise(answer)
    return any(squad_normalise(r) in normalised for r in references if squad_normalise(r))


def answer_words(answer: str) -> int:
    """An answer's length in words, as `contains_reference` reads it (markers, punctuation and articles removed)."""
    return len(squad_normalise(answer).split())


def is_yes_no(references: list[str]) -> bool:
    return bool(references) and all(squad_normalise(r) in ("yes", "no") for r in references)


def set_paths(name: str, devsets: Path) -> tuple[Path, Path, str]:
    """(answer set, corpus path to ingest, index name) of a named set; `<set>_unanswerable` asks the questions of
    documents left out of `<set>`'s corpus against its index."""
    if name == "gold":
        return REPO / "eval" / "gold" / "sample.jsonl", REPO / "data", "gold"
    if name == "gold_unanswerable":  # questions the documents of data/ are silent on, beyond the gold set's own
        return REPO / "eval" / "gold" / "unanswerable.jsonl", REPO / "data", "gold"
    if name == "drop":
        return drop_answer_set(devsets / "drop" / "answers.jsonl"), SHARED / "datasets" / "drop" / "corpus.jsonl", "drop"
    if name.endswith("_unanswerable"):
        base = name.removesuffix("_unanswerable")
        return devsets / base / "unanswerable.jsonl", devsets / base / "corpus.jsonl", base
    return devsets / name / "answers.jsonl", devsets / name / "corpus.jsonl", name


def drop_answer_set(path: Path, count: int = 200) -> Path:
    """DROP's first `count` questions with their answers, in the answer-set shape."""
    if not path.exists():
        folder = SHARED / "datasets" / "drop"
        answers = {r["_id"]: r["answers"] for r in map(json.loads, (folder / "answers.jsonl").read_text().splitlines())}
        queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()][:count]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"id": q["_id"], "question": q["text"], "answers": answers[q["_id"]]}) + "\n" for q in queries))
    return path


def per_query_rows(path: Path) -> list[dict[str, Any]]:
    """An answer run's rows, each with `id`: runs key rows `query_id` since main 0fdd4aa, `id` before (the baseline
    b8ad658 measured by this same script)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["id"] = str(row.get("query_id", row.get("id")))
    return rows


def ensure_index(index: Path, corpus: Path, config: Any) -> None:
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    if not (index / "manifest.sqlite").exists():
        print(f"building {index} from {corpus} ...", file=sys.stderr)
        with Index.open(index, config, writable=True) as opened:
            Ingestor(opened).ingest([str(corpus)])


class SourceTexts:
    """Document texts re-extracted from the files by the loader (not read from the index)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.texts: dict[str, dict[str, str]] = {}

    def text(self, source: str, doc_id: str) -> str | None:
        from rag.ingest.detect import detect_type
        from rag.ingest.loaders import load_file

        path = Path(source) if Path(source).is_absolute() else REPO / source
        file_type = detect_type(path)
        key = source if file_type == "jsonl" else f"{source}\0{doc_id}"  # a JSON Lines file is read once for all its records
        if key not in self.texts:
            loaded = load_file(path, file_type, self.config.ingest, doc_id)
            self.texts[key] = {d.doc_id: d.text for d in loaded.documents}
        return self.texts[key].get(doc_id)


def measure(name: str, devsets: Path, indexes: Path, overrides: list[str]) -> dict[str, Any]:
    from rag.config import load_config
    from rag.evaluate.answers import evaluate_answers, load_answer_set

    answers_path, corpus, index_name = set_paths(name, devsets)
    config = load_config(None, overrides)
    index = indexes / index_name
    ensure_index(index, corpus, config)
    answer_set = load_answer_set(answers_path)
    with tempfile.TemporaryDirectory() as out:
        summary = evaluate_answers(answer_set, {"default": config}, index, "offline", Path(out))
        rows = per_query_rows(Path(summary["run_dir"]) / "per_query.jsonl")
    sources = SourceTexts(config)
    answerable = [r for r in rows if r["answerable"]]
    yes_no = [r for r in answerable if is_yes_no(r["references"])]
    spans = [r for r in answerable if r["references"] and r not in yes_no]
    contained = [r for r in spans if r["answered"] and contains_reference(r["answer"], r["references"])]
    judged = [r for r in spans if r["metrics"]["answer_correctness"] == 1.0]
    disagree = [r["id"] for r in spans if (r in contained) != (r in judged)]
    answered_words = [answer_words(r["answer"]) for r in answerable if r["answered"]]
    yes_no_right = [r for r in yes_no if squad_normalise(r["answer"]).split()[:1] == [squad_normalise(r["references"][0])]]
    citations = [c for r in rows for c in r["citations"]]
    valid = sum(sources.text(c["source"], c["doc_id"]) is not None and sources.text(c["source"], c["doc_id"])[c["start"] : c["end"]] == c["text"] for c in citations)  # type: ignore[index]
    metrics = summary["configs"]["default"]["metrics"]
    seconds = [r["seconds"] for r in rows]
    return {
        "set": name,
        "questions": len(rows),
        "span_questions": len(spans),
        "contains_reference": round(len(contained) / max(1, len(spans)), 4),
        "judge_correctness": round(len(judged) / max(1, len(spans)), 4),
        "disagree": disagree,
        # a longer answer holds the reference more often: the two are read together
        "words_per_answer": round(statistics.fmean(answered_words), 1) if answered_words else None,
        "yes_no": len(yes_no),
        "yes_no_right": len(yes_no_right),
        "false_refusals": round(sum(not r["answered"] for r in answerable) / max(1, len(answerable)), 4),
        "unanswerable": len(rows) - len(answerable),
        "correct_refusals": sum(not r["answered"] for r in rows if not r["answerable"]),
        "context_recall": metrics["context_recall"]["mean"],
        "citation_precision": metrics["citation_precision"]["mean"],
        "citations": len(citations),
        "citation_validity": round(valid / max(1, len(citations)), 4),
        "seconds_p50": round(statistics.median(seconds), 4),
        "seconds_mean": round(statistics.fmean(seconds), 4),
        # texts only for the team's own set: dev sets from packages and ../shared stay out of the repo
        "rows": [{k: r[k] for k in (("id", "question", "references", "answer", "answered", "seconds") if name == "gold" else ("id", "answered", "seconds"))} for r in rows],
    }


def measure_conversations(indexes: Path, overrides: list[str]) -> dict[str, Any]:
    """Multi-turn gold set (eval/gold/conversations.jsonl): each conversation is asked turn by turn with the
    earlier questions and the pipeline's own answers as history; a turn is right when its answer contains a
    reference (answerable) or is a refusal (unanswerable). Accuracy by turn kind and by position."""
    from rag.config import load_config
    from rag.pipeline import RagPipeline

    config = load_config(None, overrides)
    index = indexes / "gold"
    ensure_index(index, REPO / "data", config)
    conversations = [json.loads(line) for line in (REPO / "eval" / "gold" / "conversations.jsonl").read_text().splitlines() if line.strip()]
    turns: list[dict[str, Any]] = []
    with RagPipeline.open(index, config) as pipeline:
        for conversation in conversations:
            history: list[dict[str, str]] = []
            for position, turn in enumerate(conversation["turns"], start=1):
                answer = pipeline.ask(turn["question"], history=list(history))
                right = (answer.answered and contains_reference(answer.answer, turn["answers"])) if turn["answers"] else not answer.answered
                turns.append({"id": f"{conversation['id']}.{position}", "kind": turn["kind"], "position": position, "right": right,
                              "question": turn["question"], "standalone": answer.trace.rewrite.standalone if answer.trace.rewrite else None, "answer": answer.answer})
                history += [{"role": "user", "content": turn["question"]}, {"role": "assistant", "content": answer.answer}]
    groups: dict[str, list[bool]] = {}
    for turn in turns:
        groups.setdefault(f"kind: {turn['kind']}", []).append(turn["right"])
        groups.setdefault(f"turn {min(turn['position'], 3)}{'+' if turn['position'] >= 3 else ''}", []).append(turn["right"])
        groups.setdefault("all turns", []).append(turn["right"])
    return {"set": "conversations", "conversations": len(conversations), "accuracy": {k: [sum(v), len(v)] for k, v in sorted(groups.items())}, "turns": turns}


def conversation_table(results: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in results for k in r["accuracy"]))
    lines = ["| turns | " + " | ".join(r.get("label", "") or "this run" for r in results) + " |", "|---|" + "---|" * len(results)]
    for key in keys:
        cells = [f"{r['accuracy'][key][0]}/{r['accuracy'][key][1]} ({r['accuracy'][key][0] / r['accuracy'][key][1]:.0%})" if key in r["accuracy"] else "-" for r in results]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibrate(names: list[str], devsets: Path, indexes: Path, overrides: list[str], target: float) -> dict[str, Any]:
    """Answer every question with no refusal threshold, keep the best evidence score, and print the refusal curve of
    the whole decision: false refusals (answerable sets) and false answers (unanswerable questions) per threshold,
    pooled and per set. A question the other rules refuse (unseen words, missing names, the floors) counts as
    refused at every threshold."""
    from rag.config import load_config
    from rag.evaluate.answers import load_answer_set
    from rag.generate.calibration import choose_threshold, refusal_curve
    from rag.pipeline import RagPipeline

    config = load_config(None, [*overrides, "generation.min_support=0"])
    answerable: list[float] = []
    unanswerable: list[float] = []
    details: list[dict[str, Any]] = []
    for name in names:
        answers_path, corpus, index_name = set_paths(name, devsets)
        ensure_index(indexes / index_name, corpus, config)
        with RagPipeline.open(indexes / index_name, config) as pipeline:
            for item in load_answer_set(answers_path).items:
                info = pipeline.ask(item.question).trace.generator
                generator = info.model_dump() if info else {}
                score = generator.get("best_score")
                refused_by_rule = score is None or str(generator.get("evidence", "")).startswith("weak")
                (answerable if item.answerable else unanswerable).append(-1.0 if refused_by_rule else score)
                details.append({"set": name, "id": item.id, "answerable": item.answerable, "score": score, "refused_by_rule": refused_by_rule,
                                "evidence": generator.get("evidence"), "coverage": generator.get("context_coverage"),
                                "expected": generator.get("expected"), "features": generator.get("features")})
    curve = refusal_curve(answerable, unanswerable, [round(0.20 + 0.01 * i, 2) for i in range(51)])
    chosen = choose_threshold(curve, target)
    print(f"| min_support | false refusals ({len(answerable)} answerable) | false answers ({len(unanswerable)} unanswerable) |\n|---|---|---|")
    for point in curve[::2]:
        print(f"| {point.threshold:.2f} | {point.false_refusals:.1%} | {point.false_answers:.1%} |")
    print(f"chosen (false refusals <= {target:.0%}): min_support={chosen.threshold:.2f}")
    print("\n" + per_set_curve(details, [p.threshold for p in curve[::2]]))
    return {"sets": names, "answerable": answerable, "unanswerable": unanswerable, "chosen": chosen.threshold, "questions": details,
            "curve": [[p.threshold, p.false_refusals, p.false_answers] for p in curve]}


def per_set_curve(details: list[dict[str, Any]], thresholds: list[float]) -> str:
    """Per set and threshold: the share of its answerable questions refused and of its unanswerable ones answered."""
    groups = list(dict.fromkeys((d["set"], d["answerable"]) for d in details))
    lines = ["| min_support | " + " | ".join(f"{name} ({'false refusals' if answerable else 'false answers'})" for name, answerable in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for t in thresholds:
        cells = []
        for name, answerable in groups:
            rows = [d for d in details if d["set"] == name and d["answerable"] == answerable]
            refused = sum(d["refused_by_rule"] or d["score"] < t for d in rows)
            cells.append(f"{(refused if answerable else len(rows) - refused) / len(rows):.1%} of {len(rows)}")
        lines.append(f"| {t:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(results: list[dict[str, Any]], label: str = "") -> str:
    lines = [
        "| set | run | questions | answer contains the reference | words per answer | judge correctness (disagree) | yes/no right | "
        "refused though answerable | correct refusals | context recall | citation precision | citation validity | s/answer p50 (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(
            f"| {r['set']} | {r.get('label', label)} | {r['questions']} | {r['contains_reference']:.1%} (of {r['span_questions']}) | "
            f"{r.get('words_per_answer') or '-'} | {r['judge_correctness']:.1%} ({len(r['disagree'])}) | {r['yes_no_right']}/{r['yes_no']} | {r['false_refusals']:.1%} | "
            f"{r['correct_refusals']}/{r['unanswerable']} | {fmt(r['context_recall'])} | {fmt(r['citation_precision'])} | "
            f"{r['citation_validity']:.1%} of {r['citations']} | {r['seconds_p50']:.3f} ({r['seconds_mean']:.3f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="gold,conversations,nyt,reddit,drop", help="comma-separated: gold, gold_unanswerable, conversations, nyt, reddit, new_wiki, drop, nyt_unanswerable, reddit_unanswerable")
    parser.add_argument("--devsets", type=Path, default=REPO / ".rag" / "devsets")
    parser.add_argument("--indexes", type=Path, default=REPO / ".rag" / "bench")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--label", default="", help="name of this run in the table (e.g. before / after)")
    parser.add_argument("--out", type=Path, help="write the figures and per-question answers here (JSON)")
    parser.add_argument("--calibrate", type=float, metavar="MAX_FALSE_REFUSALS",
                        help="print the refusal curve over --sets (answerable and *_unanswerable) and the min_support "
                        "with the fewest false answers whose false refusals stay within this share, e.g. 0.04")
    parser.add_argument("--compare", nargs="+", type=Path, help="print the tables of earlier --out files together")
    args = parser.parse_args()
    if args.compare:
        runs = [json.loads(p.read_text()) for p in args.compare]
        merged = sorted((dict(r, label=run["label"]) for run in runs for r in run["results"]), key=lambda r: r["set"])
        print(table([r for r in merged if r["set"] != "conversations"]))
        talks = [r for r in merged if r["set"] == "conversations"]
        if talks:
            print("\n" + conversation_table(talks))
        return
    names = args.sets.split(",")
    if args.calibrate is not None:
        calibration = calibrate(names, args.devsets, args.indexes, args.overrides, args.calibrate)
        if args.out:
            args.out.write_text(json.dumps(calibration, indent=1) + "\n")
        return
    results = [measure(name, args.devsets, args.indexes, args.overrides) for name in names if name != "conversations"]
    if results:
        print(table(results, args.label))
    if "conversations" in names:
        results.append(dict(measure_conversations(args.indexes, args.overrides), label=args.label))
        print("\n" + conversation_table(results[-1:]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"label": args.label, "overrides": args.overrides, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
