"""Token-level late interaction (ColBERT-style MaxSim) as a sentence-ranking feature for the offline answerer,
measured on recorded candidate sentences before anything is built.

MaxSim of a question and a sentence: for each (content) word piece of the question, the best cosine of its
contextual MiniLM state to any word piece of the sentence, averaged (idf-weighted in one variant). The states are
the bundled MiniLM's last hidden states, the ones the answerer already mean-pools into its sentence vectors
(`MiniLMOnnxEmbedder.embed_with_tokens`), so the feature would cost no second model run.

Input: `eval/answer_stages.py --out` JSON Lines (each candidate sentence's features, text and the sentence before).
Printed, for each dev set left out: how often the top-ranked sentence holds the reference (top-1/2/3) under the
current score, under `score + w * maxsim` and under `score - 0.5 dense + w * maxsim` (MaxSim replacing the pooled
cosine), w chosen on the other sets (best mean top-1), for each variant of MaxSim.

    python eval/answer_stages.py --devsets /work/devsets --indexes /tmp/idx --cache /tmp/cache --sets nyt,reddit,new_wiki --out /tmp/stages.jsonl
    python eval/maxsim_sentences.py /tmp/stages.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from fit_sentence_ranker import top_k

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)


def content_mask(tokens: tuple[str, ...]) -> np.ndarray:
    """Word pieces of words that carry content: not punctuation, not a stopword (all pieces of a kept word)."""
    from rag.text_units import _stopwords

    words: list[list[int]] = []
    for i, token in enumerate(tokens):
        if token.startswith("##") and words:
            words[-1].append(i)
        else:
            words.append([i])
    mask = np.zeros(len(tokens), dtype=bool)
    for pieces in words:
        word = "".join(tokens[i].removeprefix("##") for i in pieces)
        if word.isalnum() and word not in _stopwords() and (len(word) > 1 or word.isdigit()):
            mask[pieces] = True
    return mask


def maxsim(question: np.ndarray, weights: np.ndarray, sentence: np.ndarray) -> float:
    """Weighted mean over question pieces of the best cosine to any sentence piece."""
    if not len(question) or not len(sentence) or weights.sum() <= 0:
        return 0.0
    return float((question @ sentence.T).max(axis=1) @ weights / weights.sum())


def piece_idf(questions: list[dict]) -> dict[str, float]:
    """Inverse document frequency of word pieces over the set's candidate sentences (one document each)."""
    from rag.core.bundled import load_tokenizer

    tokenizer = load_tokenizer()
    texts = {s["text"] for q in questions for s in q["sentences"]}
    frequency: Counter[str] = Counter()
    for encoding in tokenizer.encode_batch(sorted(texts)):
        frequency.update(set(encoding.tokens))
    return {piece: math.log((1 + len(texts)) / (1 + n)) + 1 for piece, n in frequency.items()}


def features(questions: list[dict], embedder, idf: dict[str, float]) -> None:
    """Adds each sentence's MaxSim variants to its feature dict: all question pieces, content pieces, content
    pieces idf-weighted, and content pieces against the sentence read after the one before it (its own pieces only)."""
    for done, q in enumerate(questions):
        texts = [s["text"] for s in q["sentences"]]
        joined = [f"{s['previous']} {s['text']}".strip() for s in q["sentences"]]
        _, states = embedder.embed_with_tokens([q["question"], *texts, *joined])
        asked, own, read_after = states[0], states[1 : 1 + len(texts)], states[1 + len(texts) :]
        content = content_mask(asked.tokens)
        every = np.ones(len(asked.tokens))
        rare = np.array([idf.get(t, 1.0) for t in asked.tokens]) * content
        for s, alone, after in zip(q["sentences"], own, read_after):
            tail = after.vectors[len(after.tokens) - len(alone.tokens) :]
            s["maxsim_all"] = maxsim(asked.vectors, every, alone.vectors)
            s["maxsim"] = maxsim(asked.vectors, content.astype(float), alone.vectors)
            s["maxsim_idf"] = maxsim(asked.vectors, rare, alone.vectors)
            s["maxsim_context"] = maxsim(asked.vectors, content.astype(float), tail)
        if done % 50 == 0:
            print(f"  {done}/{len(questions)}", file=sys.stderr, flush=True)


def ranked(questions: list[dict], feature: str, w: float, replace_dense: bool) -> list[np.ndarray]:
    return [
        np.array([s["score"] - (0.5 * s["dense"] if replace_dense else 0.0) + w * s[feature] for s in q["sentences"]])
        for q in questions
    ]


def cell(questions: list[dict], scores: list[np.ndarray]) -> str:
    return " / ".join(f"{top_k([q['sentences'] for q in questions], scores, k):.1%}" for k in (1, 2, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", type=Path, nargs="+", help="answer_stages.py --out files")
    parser.add_argument("--features", type=Path, help="the sentences with their MaxSim variants: read when it exists, else written")
    args = parser.parse_args()
    from rag.config import load_config
    from rag.index.embedders.minilm import MiniLMOnnxEmbedder

    known = args.features is not None and args.features.exists()
    paths = [args.features] if known else args.stages
    rows = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    by_set: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("sentences"):
            by_set.setdefault(row["set"], []).append(row)
    if not known:
        embedder = MiniLMOnnxEmbedder(load_config(None, []).embedding)
        for name, questions in by_set.items():
            print(f"MaxSim on {name} ({len(questions)} questions)", file=sys.stderr)
            features(questions, embedder, piece_idf(questions))
        if args.features:
            args.features.write_text("".join(json.dumps(q) + "\n" for qs in by_set.values() for q in qs))
    print("| left out | questions | variant | current top-1/2/3 | score + w maxsim (w) | MaxSim replacing dense (w) |")
    print("|---|---|---|---|---|---|")
    for feature in ("maxsim_all", "maxsim", "maxsim_idf", "maxsim_context"):
        for held, questions in by_set.items():
            others = [q for name, qs in by_set.items() if name != held for q in qs]
            cells = []
            for replace in (False, True):
                w = max(WEIGHTS, key=lambda w: top_k([q["sentences"] for q in others], ranked(others, feature, w, replace), 1))
                cells.append(f"{cell(questions, ranked(questions, feature, w, replace))} ({w})")
            current = cell(questions, [np.array([s["score"] for s in q["sentences"]]) for q in questions])
            print(f"| {held} | {len(questions)} | {feature} | {current} | {cells[0]} | {cells[1]} |")
    print("\nfixed weights, top-1 / 2 / 3 per set:")
    for feature in ("maxsim_all", "maxsim", "maxsim_idf", "maxsim_context"):
        for replace in (False, True):
            for w in WEIGHTS:
                print(f"  {feature} {'replacing dense' if replace else 'added'} w={w}: " + ", ".join(
                    f"{name} {cell(qs, ranked(qs, feature, w, replace))}" for name, qs in by_set.items()))


if __name__ == "__main__":
    main()
