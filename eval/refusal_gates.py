"""Calibrate the offline answerer's refusal gates besides `generation.min_support` on the dev sets, both errors at once.

The gates (`rag.generate.extractive.RefusalGates`): the score a best passage lacking a name or figure the question
asks about needs (`names_min_score`), and the dense similarity at which the unseen-words rule takes the best
sentence for a paraphrase (`paraphrase_dense`). Each question is answered once with every gate open; its evidence
(the best sentence and the coverage features, over the wider read and over the retrieved passages alone) is kept,
and the decision is replayed for every pair of gate values. Printed per pair: false refusals on each answerable set,
the answer-contains-the-reference rate (refused counts as wrong), and correct refusals on each unanswerable set
(for `gold`, its own seven unanswerable questions). `eval/bench_answers.py --calibrate` draws the curve of
`generation.min_support` the same way.

    python eval/build_span_devsets.py --bigbench bigbench-1.0.0.tar.gz --out .rag/devsets   # once
    python eval/refusal_gates.py --sets gold,gold_unanswerable,nyt,nyt_unanswerable,reddit,reddit_unanswerable,new_wiki,new_wiki_unanswerable
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench_answers import REPO, contains_reference, ensure_index, is_yes_no, set_paths

OPEN = {"max_unseen": 2.0, "paraphrase_dense": 0.0, "names_min_score": 0.0, "strict_floor_dense": 0.0}  # no gate refuses


@dataclass(frozen=True, slots=True)
class Recorded:
    set: str
    id: str
    answerable: bool
    span_question: bool
    contains: bool  # the answer given with every gate open contains a reference
    read: object  # Evidence over the passages read
    retrieved: object | None  # Evidence over the retrieved passages alone, when the answerer reads more


def record(names: list[str], devsets: Path, indexes: Path, overrides: list[str]) -> list[Recorded]:
    from rag.config import load_config
    from rag.evaluate.answers import load_answer_set
    from rag.generate.citations import CitationChecker
    from rag.generate.extractive import ExtractiveAnswerer, RefusalGates, reads_more
    from rag.pipeline import RagPipeline

    config = load_config(None, overrides)
    rows: list[Recorded] = []
    for name in names:
        answers_path, corpus, index_name = set_paths(name, devsets)
        ensure_index(indexes / index_name, corpus, config)
        with RagPipeline.open(indexes / index_name, config) as pipeline:
            answerer = ExtractiveAnswerer(config.generation, pipeline.sentence_embedder, pipeline._heading_path, RefusalGates(**OPEN))
            for item in load_answer_set(answers_path).items:
                found = pipeline.retrieve(item.question)
                read = found.answer_passages or found.passages
                evidence = answerer.evidence(found.question, read, found.focus, found.passages)
                retrieved = answerer.evidence(found.question, found.passages, found.focus) if reads_more(read, found.passages) else None
                text = answerer.answer(found.question, read, CitationChecker(read, pipeline.index.manifest), found.focus).text if read else ""
                span = bool(item.references) and not is_yes_no(item.references)
                rows.append(Recorded(name, item.id, item.answerable, span, span and contains_reference(text, item.references), evidence, retrieved))
        print(f"{name}: {sum(r.set == name for r in rows)} questions", file=sys.stderr)
    return rows


def refused(row: Recorded, min_support: float, gates: object) -> bool:
    if row.read.weakness(min_support, gates):  # type: ignore[attr-defined]
        return True
    return row.retrieved is not None and bool(row.retrieved.weakness(min_support, gates))  # type: ignore[attr-defined]


def sweep(rows: list[Recorded], min_support: float, names_scores: list[float], paraphrases: list[float]) -> str:
    from rag.generate.extractive import RefusalGates

    sets = list(dict.fromkeys(r.set for r in rows))
    answerable = [s for s in sets if any(r.set == s and r.answerable for r in rows)]
    silent = [s for s in sets if any(r.set == s and not r.answerable for r in rows)]
    header = ["names_min_score", "paraphrase_dense", *(f"{s} false refusals / contains" for s in answerable), *(f"{s} correct refusals" for s in silent)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for names_score, paraphrase in itertools.product(names_scores, paraphrases):
        gates = replace(RefusalGates(), names_min_score=names_score, paraphrase_dense=paraphrase)
        cells = [f"{names_score:.2f}", f"{paraphrase:.2f}"]
        for s in answerable:
            group = [r for r in rows if r.set == s and r.answerable]
            spans = [r for r in group if r.span_question]
            wrong = sum(refused(r, min_support, gates) for r in group)
            right = sum(r.contains and not refused(r, min_support, gates) for r in spans)
            cells.append(f"{wrong / len(group):.1%} / {right / max(1, len(spans)):.1%}")
        for s in silent:
            group = [r for r in rows if r.set == s and not r.answerable]
            cells.append(f"{sum(refused(r, min_support, gates) for r in group)}/{len(group)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="gold,gold_unanswerable,nyt,nyt_unanswerable,reddit,reddit_unanswerable,new_wiki,new_wiki_unanswerable",
                        help="comma-separated sets of eval/bench_answers.py (never the held-out amazon while calibrating)")
    parser.add_argument("--devsets", type=Path, default=REPO / ".rag" / "devsets")
    parser.add_argument("--indexes", type=Path, default=REPO / ".rag" / "bench")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--names-min-score", default="0.40,0.44,0.46,0.48,0.50,0.52,0.56", help="values of the names gate to try")
    parser.add_argument("--paraphrase-dense", default="0.50,0.55,0.60", help="values of the paraphrase relaxation to try")
    args = parser.parse_args()
    from rag.config import load_config

    rows = record(args.sets.split(","), args.devsets, args.indexes, args.overrides)
    min_support = load_config(None, args.overrides).generation.min_support
    print(sweep(rows, min_support, [float(v) for v in args.names_min_score.split(",")], [float(v) for v in args.paraphrase_dense.split(",")]))


if __name__ == "__main__":
    main()
