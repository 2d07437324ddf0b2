"""Evaluation datasets: BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) and JSONL answer sets."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError


@dataclass(frozen=True, slots=True)
class BeirDataset:
    name: str
    corpus: Path
    queries: dict[str, str]  # only queries that have judgements in the split
    qrels: dict[str, dict[str, int]]
    fingerprint: str  # content hash of corpus, queries and qrels: a changed file is a different dataset
    by_source: bool = False  # documents are the corpus folder's files, named by their path relative to its parent


def hash_files(paths: list[Path]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    corpus, queries_path, qrels_path = folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"
    for required in (corpus, queries_path, qrels_path):
        if not required.is_file():
            raise RagError(f"{required} not found", "a BEIR dataset folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries: dict[str, str] = {}
    for line in queries_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if str(record["_id"]) in qrels:
                queries[str(record["_id"])] = record["text"]
    missing = set(qrels) - set(queries)
    if missing:
        raise RagError(f"{len(missing)} judged queries are missing from {queries_path}", "check that the files belong together")
    return BeirDataset(folder.name, corpus, queries, qrels, hash_files([corpus, queries_path, qrels_path]))


def load_gold_retrieval(path: Path, corpus: Path) -> BeirDataset:
    """A JSONL answer set (`{"id", "question", "sources": ["data/handbook.pdf"]}`) as a retrieval set over the
    files of `corpus`: a question's relevant documents are its sources, written relative to the corpus folder's
    parent (the repository root for `eval/gold/sample.jsonl` over `data/`). Unanswerable questions are left out."""
    if not corpus.is_dir():
        raise RagError(f"{corpus} is not a folder", "give the folder of documents the gold set's sources are in")
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for _, where, record in read_jsonl_objects(path, '{"id", "question", "sources": [...]}'):
        if record.get("sources"):
            queries[str(record["id"])] = str(record["question"])
            qrels[str(record["id"])] = {str(source): 1 for source in record["sources"]}
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    return BeirDataset(path.stem, corpus, queries, qrels, hash_files([path, *files]), by_source=True)


def read_jsonl_objects(path: Path, what: str) -> Iterator[tuple[int, str, dict]]:
    """(line number, "path, line N", object) for each non-blank line; a line that is not a JSON object is a
    RagError naming it. `what` describes the expected object for the hint."""
    for number, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagError(f"{where}: not valid JSON ({exc.msg})", f"each line must be one JSON object: {what}") from None
        if not isinstance(record, dict):
            raise RagError(f"{where}: not a JSON object", f"each line must be one JSON object: {what}")
        yield number, where, record
