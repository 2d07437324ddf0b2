"""Build BEIR-layout retrieval dev sets from SQuAD-shifts (Miller et al., 2020; CC BY 4.0), shipped inside the
`bigbench` package on PyPI (benchmark_tasks/squad_shifts/): crowd questions over paragraphs of new Wikipedia
articles, New York Times articles, Reddit comments and Amazon product reviews.

They widen the data the fusion default is chosen on beyond SciFact and DROP: four natures of text, questions
written by people who read one paragraph, and many paragraphs of the same article or thread in the corpus
(near neighbours that share names and topic). Per set: every paragraph is a document (no title), and one
question drawn at random from each of up to 300 randomly drawn paragraphs is a query whose one relevant
document is its own paragraph. Nothing is written by hand and nothing is downloaded at run time:

    python -m pip download --no-deps -d /tmp/bb bigbench==1.0.0
    python eval/build_squad_shifts_retrieval.py --bigbench /tmp/bb/bigbench-1.0.0.tar.gz --out .rag/datasets

Output: `<out>/squad-<set>/{corpus.jsonl, queries.jsonl, qrels/test.tsv}`. Keep it out of the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import tarfile
from pathlib import Path

SETS = {"wiki": "new_wiki_v1.0.json", "nyt": "nyt_v1.0.json", "reddit": "reddit_v1.0.json", "amazon": "amazon_reviews_v1.0.json"}
QUERIES = 300
SEED = 14


def write_set(data: list[dict], name: str, out: Path) -> tuple[int, int]:
    """Write one set; returns (documents, queries)."""
    paragraphs = [paragraph for article in data for paragraph in article["paragraphs"] if paragraph["context"].strip()]
    rng = random.Random(f"{SEED}-{name}")
    asked = [number for number in rng.sample(range(len(paragraphs)), len(paragraphs)) if paragraphs[number]["qas"]][:QUERIES]
    folder = out / f"squad-{name}"
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as corpus:
        for number, paragraph in enumerate(paragraphs):
            corpus.write(json.dumps({"_id": f"{name}-{number:05d}", "title": "", "text": paragraph["context"]}) + "\n")
    with (folder / "queries.jsonl").open("w") as queries, (folder / "qrels" / "test.tsv").open("w") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for number in sorted(asked):
            question = rng.choice(paragraphs[number]["qas"])["question"].strip()
            queries.write(json.dumps({"_id": f"{name}-q{number:05d}", "text": question}) + "\n")
            qrels.write(f"{name}-q{number:05d}\t{name}-{number:05d}\t1\n")
    return len(paragraphs), len(asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bigbench", type=Path, required=True, help="bigbench-1.0.0.tar.gz from `pip download --no-deps bigbench==1.0.0`")
    parser.add_argument("--out", type=Path, default=Path(".rag/datasets"))
    args = parser.parse_args()
    with tarfile.open(args.bigbench) as archive:
        members = archive.getmembers()
        for name, file_name in SETS.items():
            member = next(m for m in members if m.name.endswith(f"squad_shifts/{file_name}"))
            data = json.load(archive.extractfile(member))["data"]  # type: ignore[arg-type]
            documents, queries = write_set(data, name, args.out)
            print(f"squad-{name}: {documents} documents, {queries} queries -> {args.out / f'squad-{name}'}")


if __name__ == "__main__":
    main()
