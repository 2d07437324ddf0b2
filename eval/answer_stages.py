"""Where the offline answerer loses answerable questions, stage by stage, and its quick dev loop.

For each answerable span question (yes/no excluded) of the dev sets, the first stage that loses the reference:
- retrieval: no passage the answerer reads (the wider read) holds it;
- refused: the answerer refused though it is there;
- ranking: it is in the passages but not in the best-scored sentence (nor elsewhere in the answer);
- not shown: it is in the best sentence but the answer text lacks it;
- right: the answer contains it (the answer may hold it in a follower or the sentence before).
Also the top-1/2/3 sentence ceiling (the reference in one of the k best-scored sentences, refusals ignored), the
mean answer length in words, and correct refusals on the unanswerable twins. Containment is measured on the
answerer's own text (its [n] markers removed), as `eval/bench_answers.py` measures the pipeline's answer.

Retrieval is the slow part and does not change when the answerer does: each question's passages (the wider read and
the retrieved ones) are recorded once under --cache, with the sentence vectors, so a rerun after an answerer change
takes seconds per set rather than minutes.

    python eval/answer_stages.py --devsets .rag/devsets --indexes /tmp/idx --sets nyt,reddit,new_wiki,nyt_unanswerable
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench_answers import REPO, answer_words, contains_reference, ensure_index, is_yes_no, set_paths

STAGES = ("right", "retrieval", "refused", "ranking", "not shown")


def recorded_retrieval(name: str, devsets: Path, indexes: Path, overrides: list[str], cache: Path) -> list[dict[str, Any]]:
    """Each question of set `name` with the passages the answerer reads and those retrieved, recorded once."""
    from rag.config import load_config
    from rag.evaluate.answers import load_answer_set
    from rag.pipeline import RagPipeline

    key = hashlib.sha1(json.dumps([name, overrides]).encode()).hexdigest()[:10]
    path = cache / f"{name}-{key}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    answers_path, corpus, index_name = set_paths(name, devsets)
    config = load_config(None, overrides)
    ensure_index(indexes / index_name, corpus, config)
    rows = []
    with RagPipeline.open(indexes / index_name, config) as pipeline:
        for item in load_answer_set(answers_path).items:
            found = pipeline.retrieve(item.question)
            rows.append({
                "id": item.id, "question": found.question, "focus": found.focus, "references": item.references,
                "answerable": item.answerable, "read": found.answer_passages or found.passages, "shown": found.passages,
            })
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(rows))
    return rows


def answer_all(name: str, rows: list[dict[str, Any]], indexes: Path, devsets: Path, overrides: list[str], cache: Path) -> list[dict[str, Any]]:
    """Answer every recorded question with the current answerer; one result row each."""
    from rag.config import load_config
    from rag.generate.citations import CitationChecker
    from rag.generate.extractive import CachedEmbedder, ExtractiveAnswerer
    from rag.pipeline import RagPipeline

    config = load_config(None, overrides)
    index_name = set_paths(name, devsets)[2]
    vectors_path = cache / f"vectors-{index_name}.pickle"
    results = []
    with RagPipeline.open(indexes / index_name, config) as pipeline:
        model_id = pipeline.index.indexed_embedding_config().model_id()
        if vectors_path.exists():
            CachedEmbedder._memories[model_id] = pickle.loads(vectors_path.read_bytes())
        embedder = CachedEmbedder(pipeline.index.query_embedder, model_id, size=1_000_000)
        answerer = ExtractiveAnswerer(config.generation, embedder, pipeline._heading_path)
        for row in rows:
            read, shown = row["read"], row["shown"]
            answer = answerer.answer(row["question"], read, CitationChecker(read, pipeline.index.manifest), row["focus"], shown) if read else None
            scored = answerer.evidence(row["question"], read, row["focus"], shown).scored if read else []
            results.append(judge(row, answer, scored))
        vectors_path.write_bytes(pickle.dumps(CachedEmbedder._memories[model_id]))
    return results


def judge(row: dict[str, Any], answer: Any, scored: list[Any]) -> dict[str, Any]:
    """The stage that loses this question's reference, and what the ceilings see."""
    refs = row["references"]
    answered = answer is not None and answer.answered
    text = answer.text if answered else ""
    result: dict[str, Any] = {
        "id": row["id"], "question": row["question"], "references": refs, "answerable": row["answerable"],
        "answered": answered, "answer": text, "words": answer_words(text) if answered else 0,
        "span": bool(refs) and not is_yes_no(refs),
        "top": [s.span.text for s in scored[:3]],
    }
    if not (row["answerable"] and result["span"]):
        return result
    in_read = any(contains_reference(p.text, refs) for p in row["read"])
    best = scored[0].span.text if scored else ""
    result["ceiling"] = [any(contains_reference(t, refs) for t in result["top"][:k]) for k in (1, 2, 3)]
    result["sentences"] = sentence_features(scored, row["read"], refs) if in_read else []
    if answered and contains_reference(text, refs):
        result["stage"] = "right"
    elif not in_read:
        result["stage"] = "retrieval"
    elif not answered:
        result["stage"] = "refused"
    elif not contains_reference(best, refs):
        result["stage"] = "ranking"
    else:
        result["stage"] = "not shown"
    return result


def sentence_features(scored: list[Any], read: list[Any], refs: list[str]) -> list[dict[str, Any]]:
    """Every candidate sentence's features (eval/fit_sentence_ranker.py) and whether it holds the reference: the
    answerer's own (lexical, dense, type, score), its passage's place in the read (0: best retrieved) and the best
    dense similarity of the candidate sentences beside it in its passage; its text and the sentence's before it
    (eval/maxsim_sentences.py scores them again)."""
    place = {p.number: i for i, p in enumerate(read)}
    beside: dict[int, float] = {}
    for number in {s.passage for s in scored}:
        ordered = sorted((s for s in scored if s.passage == number), key=lambda s: s.span.start)
        for i, s in enumerate(ordered):
            beside[id(s)] = max((ordered[j].dense for j in (i - 1, i + 1) if 0 <= j < len(ordered)), default=0.0)
    return [
        {"lexical": s.lexical, "dense": s.dense, "typed": s.typed, "score": s.score, "rank": place.get(s.passage, 0),
         "neighbour": beside[id(s)], "label": contains_reference(s.span.text, refs),
         "text": s.span.text, "previous": s.previous.text if s.previous else ""}
        for s in scored
    ]


def report(name: str, results: list[dict[str, Any]]) -> str:
    answerable = [r for r in results if r["answerable"]]
    if not answerable:
        refused = sum(not r["answered"] for r in results)
        return f"{name}: correct refusals {refused}/{len(results)}"
    spans = [r for r in answerable if r["span"]]
    stages = Counter(r["stage"] for r in spans)
    ceilings = [sum(r["ceiling"][k] for r in spans) / len(spans) for k in range(3)]
    words = [r["words"] for r in answerable if r["answered"]]
    false_refusals = sum(not r["answered"] for r in answerable) / len(answerable)
    cells = " ".join(f"{s}={stages[s] / len(spans):.1%}" for s in STAGES)
    return (f"{name}: n={len(spans)} {cells} | false refusals {false_refusals:.1%} | top1/2/3 ceiling "
            f"{ceilings[0]:.1%}/{ceilings[1]:.1%}/{ceilings[2]:.1%} | mean words {statistics.mean(words) if words else 0:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="nyt,reddit,new_wiki,nyt_unanswerable,reddit_unanswerable,new_wiki_unanswerable")
    parser.add_argument("--devsets", type=Path, default=REPO / ".rag" / "devsets")
    parser.add_argument("--indexes", type=Path, default=REPO / ".rag" / "bench")
    parser.add_argument("--cache", type=Path, default=REPO / ".rag" / "answer-stages", help="recorded retrievals and sentence vectors")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override section.key=value")
    parser.add_argument("--out", type=Path, help="write every question's result here (JSON Lines)")
    args = parser.parse_args()
    everything = []
    for name in args.sets.split(","):
        rows = recorded_retrieval(name, args.devsets, args.indexes, args.overrides, args.cache)
        results = answer_all(name, rows, args.indexes, args.devsets, args.overrides, args.cache)
        print(report(name, results), flush=True)
        everything += [{"set": name, **r} for r in results]
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in everything))
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
