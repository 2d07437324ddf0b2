"""Fit the offline answerer's sentence ranking: a logistic regression of "this sentence holds the reference" on the
answerer's own per-sentence features, fitted on all dev sets but one and checked on the one left out.

Input: the JSON Lines of `eval/answer_stages.py --out` (every candidate sentence of every answerable span question
whose passages hold the reference, with its features). Printed: for each left-out set, how often the top-ranked
sentence holds the reference under the current ranking (`score`) and under the fitted one (top-1/2/3), then the
weights fitted on every set, to copy into `rag.generate.extractive.RANK_WEIGHTS` when they help on each set.

    python eval/answer_stages.py --devsets /work/devsets --indexes /tmp/idx --sets nyt,reddit,new_wiki --out /tmp/stages.jsonl
    python eval/fit_sentence_ranker.py /tmp/stages.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FEATURES = ("lexical", "dense", "typed", "neighbour", "rank")


def design(sentences: list[dict[str, float]]) -> np.ndarray:
    """One row per sentence: the features the answerer computes, the passage's place as 1/(1+rank)."""
    return np.array([[s["lexical"], s["dense"], s["typed"], s["neighbour"], 1.0 / (1.0 + s["rank"])] for s in sentences])


def top_k(questions: list[list[dict[str, float]]], scores: list[np.ndarray], k: int) -> float:
    hits = sum(any(q[i]["label"] for i in np.argsort(-s, kind="stable")[:k]) for q, s in zip(questions, scores))
    return hits / max(1, len(questions))


def fit(questions: list[list[dict[str, float]]], c: float) -> tuple[np.ndarray, float]:
    """Pairwise: each sentence holding the reference against each that does not, both ways
    round (a ranking is what is asked for, not a probability)."""
    from sklearn.linear_model import LogisticRegression

    pairs = []
    for q in questions:
        x = design(q)
        positives = [i for i, s in enumerate(q) if s["label"]]
        negatives = [i for i, s in enumerate(q) if not s["label"]]
        pairs += [x[i] - x[j] for i in positives for j in negatives]
    x = np.array(pairs)
    model = LogisticRegression(C=c, max_iter=2000, fit_intercept=False).fit(np.vstack([x, -x]), np.r_[np.ones(len(x)), np.zeros(len(x))])
    return model.coef_[0], 0.0


def followers(rows: list[dict], ratio: float, most: int = 3, min_support: float = 0.28) -> tuple[float, float]:
    """Replays the answer's choice of further sentences (`FOLLOWER_RATIO` of the best score, at most `most` in all)
    on answered questions: the share of all questions whose chosen sentences hold the reference, and the mean number
    of sentences chosen (the sentence before, shown after a leading pronoun, left out)."""
    hits, counts = 0, []
    for row in rows:
        sentences = row.get("sentences") or []
        if not row["answered"] or not sentences:
            continue
        best = sentences[0]["score"]
        chosen = [0] + [i for i, s in enumerate(sentences[1:], 1) if s["score"] >= max(min_support, ratio * best)][: most - 1]
        hits += any(sentences[i]["label"] for i in chosen)
        counts.append(len(chosen))
    return hits / max(1, len(rows)), float(np.mean(counts)) if counts else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", type=Path, nargs="+", help="answer_stages.py --out files")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args()
    rows = [json.loads(line) for path in args.stages for line in path.read_text().splitlines() if line.strip()]
    by_set: dict[str, list[list[dict[str, float]]]] = {}
    for row in rows:
        if row.get("sentences"):
            by_set.setdefault(row["set"], []).append(row["sentences"])
    print("| left out | questions | current top-1/2/3 | fitted on the others top-1/2/3 |")
    print("|---|---|---|---|")
    for held, questions in by_set.items():
        others = [q for name, qs in by_set.items() if name != held for q in qs]
        weights, _ = fit(others, args.c)
        current = [np.array([s["score"] for s in q]) for q in questions]
        fitted = [design(q) @ weights for q in questions]
        cells = ["/".join(f"{top_k(questions, scores, k):.1%}" for k in (1, 2, 3)) for scores in (current, fitted)]
        print(f"| {held} | {len(questions)} | {cells[0]} | {cells[1]} |")
    print("\n| follower ratio | " + " | ".join(f"{name}: holds the reference / sentences" for name in by_set) + " |")
    print("|---|" + "---|" * len(by_set))
    for ratio in (0.85, 0.8, 0.75, 0.7, 0.6):
        cells = [followers([r for r in rows if r["set"] == name and r["answerable"] and r["span"]], ratio) for name in by_set]
        print(f"| {ratio} | " + " | ".join(f"{hit:.1%} / {count:.2f}" for hit, count in cells) + " |")
    weights, intercept = fit([q for qs in by_set.values() for q in qs], args.c)
    print("weights on every set:", {name: round(float(w), 4) for name, w in zip(FEATURES, weights)}, "intercept", round(intercept, 4))


if __name__ == "__main__":
    main()
