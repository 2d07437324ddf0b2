"""Build span-answer dev sets for the offline answerer from SQuAD-shifts (Miller et al., 2020).

SQuAD-shifts (CC BY 4.0) ships inside the `bigbench` package on PyPI (benchmark_tasks/squad_shifts/): SQuAD v1.1-style
questions with span answers over New York Times articles, Reddit comments, new Wikipedia articles and Amazon product reviews. Nothing is
downloaded at run time and nothing is copied into the repo: get the package once and point this script at it:

    python -m pip download --no-deps -d /tmp/bb bigbench==1.0.0
    python eval/build_span_devsets.py --bigbench /tmp/bb/bigbench-1.0.0.tar.gz --out .rag/devsets

Each set mimics "first questions about short documents": a document is one article (NYT: its paragraphs up to about
400 words; Reddit: one comment; Wikipedia: one paragraph), the question is the first question asked about it, and the
corpus holds the questioned documents plus twice as many unquestioned ones from the same source (distractors).
Output per set: `<out>/<set>/corpus.jsonl` (BEIR fields `_id`, `title`, `text`) and `<out>/<set>/answers.jsonl`
(`id`, `question`, `answers`; no sources: the reference answers decide), and `<out>/<set>/unanswerable.jsonl`: first
questions of up to 100 documents of the same source left out of the corpus (no answers: a refusal is right). `nyt` and
`reddit` are for development; `new_wiki` was kept untouched until the first round's final check and is a dev set since;
`amazon` (product reviews) is kept untouched until the second round's final check.
"""

from __future__ import annotations

import argparse
import json
import random
import tarfile
from pathlib import Path

SETS = {"nyt": "nyt_v1.0.json", "reddit": "reddit_v1.0.json", "new_wiki": "new_wiki_v1.0.json", "amazon": "amazon_reviews_v1.0.json"}
MAX_WORDS = 400
QUESTIONS = 200
DISTRACTORS_PER_QUESTION = 2
UNANSWERABLE = 100  # first questions of documents left out of the corpus: unanswerable there by construction
SEED = 20


def documents(data: list[dict], name: str) -> list[dict]:
    """(text, first question, its answers) per document of the set's shape."""
    out: list[dict] = []
    for article in data:
        paragraphs = article["paragraphs"]
        groups = [paragraphs] if name == "nyt" else [[p] for p in paragraphs]
        for group in groups:
            kept, words = [], 0
            for paragraph in group:
                words += len(paragraph["context"].split())
                if kept and words > MAX_WORDS:
                    break
                kept.append(paragraph)
            first = kept[0]["qas"][0] if kept[0]["qas"] else None
            if first is None:
                continue
            answers = list(dict.fromkeys(a["text"].strip() for a in first["answers"] if a["text"].strip()))
            out.append({"text": "\n\n".join(p["context"] for p in kept), "question": first["question"].strip(), "answers": answers})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bigbench", type=Path, required=True, help="bigbench-1.0.0.tar.gz from `pip download --no-deps bigbench==1.0.0`")
    parser.add_argument("--out", type=Path, default=Path(".rag/devsets"))
    args = parser.parse_args()
    with tarfile.open(args.bigbench) as archive:
        for name, file_name in SETS.items():
            member = next(m for m in archive.getmembers() if m.name.endswith(f"squad_shifts/{file_name}"))
            data = json.load(archive.extractfile(member))["data"]  # type: ignore[arg-type]
            docs = documents(data, name)
            rng = random.Random(f"{SEED}-{name}")
            rng.shuffle(docs)
            asked, distractors = docs[:QUESTIONS], docs[QUESTIONS : QUESTIONS * (1 + DISTRACTORS_PER_QUESTION)]
            left_out = docs[QUESTIONS * (1 + DISTRACTORS_PER_QUESTION) :][:UNANSWERABLE]
            folder = args.out / name
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / "corpus.jsonl").open("w") as corpus, (folder / "answers.jsonl").open("w") as answers:
                for number, doc in enumerate(asked + distractors):
                    corpus.write(json.dumps({"_id": f"{name}-{number:04d}", "title": "", "text": doc["text"]}) + "\n")
                for number, doc in enumerate(asked):
                    answers.write(json.dumps({"id": f"{name}-q{number:03d}", "question": doc["question"], "answers": doc["answers"]}) + "\n")
            with (folder / "unanswerable.jsonl").open("w") as unanswerable:
                for number, doc in enumerate(left_out):
                    unanswerable.write(json.dumps({"id": f"{name}-u{number:03d}", "question": doc["question"], "answers": []}) + "\n")
            print(f"{name}: {len(asked)} questions, {len(asked) + len(distractors)} documents -> {folder}")


if __name__ == "__main__":
    main()
