"""`rag eval retrieval` on a tiny BEIR dataset: metrics, run folders, the index cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.evaluate.metrics import retrieval_metrics
from tests.helpers import run_rag, write_tiny_beir

@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_tiny_beir(tmp_path / "tiny")


def test_metrics_match_hand_computed_values() -> None:
    qrels = {"a": {"x": 1}, "b": {"y": 1}, "c": {"z": 1}}
    run = {"a": {"x": 3.0, "p": 2.0}, "b": {"p": 3.0, "y": 2.0}, "c": {"p": 1.0}}
    per_query = retrieval_metrics(run, qrels)
    assert per_query["a"]["nDCG@10"] == pytest.approx(1.0) and per_query["a"]["MRR@10"] == 1.0
    assert per_query["b"]["nDCG@10"] == pytest.approx(1 / 1.5849625, rel=1e-5)  # relevant at rank 2: 1/log2(3)
    assert per_query["b"]["MRR@10"] == 0.5 and per_query["b"]["Recall@10"] == 1.0
    assert per_query["c"]["nDCG@10"] == 0.0 and per_query["c"]["Recall@100"] == 0.0
    assert retrieval_metrics({}, {"a": {"x": 1}})["a"]["nDCG@10"] == 0.0  # a query with no results still counts


@pytest.mark.slow
def test_eval_retrieval_writes_a_run_and_reuses_the_index(dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "bm25.yaml").write_text("retrieval:\n  dense_top_k: 0\n")
    args = ["eval", "retrieval", "--dataset", str(dataset), "--config", str(tmp_path / "bm25.yaml"),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs"), "--json"]
    first = run_rag(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    metrics = summary["configs"]["bm25"]["metrics"]
    # BM25 finds q1 and q2 at rank 1; q3 shares no word with any document
    assert metrics["nDCG@10"] == pytest.approx(2 / 3, abs=1e-4) and metrics["MRR@10"] == pytest.approx(2 / 3, abs=1e-4)

    run_dir = Path(summary["run_dir"])
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["dataset"]["name"] == "tiny" and len(meta["dataset"]["fingerprint"]) == 32 and meta["code"]["package"]
    assert json.loads((run_dir / "configs" / "bm25.json").read_text())["retrieval"]["dense_top_k"] == 0
    rows = [json.loads(line) for line in (run_dir / "per_query.jsonl").read_text().splitlines()]
    assert sorted(r["query_id"] for r in rows) == ["q1", "q2", "q3"]
    assert next(r for r in rows if r["query_id"] == "q1")["retrieved"][0] == "d1"
    assert json.loads((run_dir / "summary.json").read_text())["configs"]["bm25"]["metrics"] == metrics

    index_dir = Path(summary["configs"]["bm25"]["index"])
    second = json.loads(run_rag(*args, cwd=tmp_path).stdout)
    assert second["configs"]["bm25"]["index"] == str(index_dir)  # same dataset + indexing config: same cached index
    assert second["configs"]["bm25"]["metrics"] == metrics
    assert Path(second["run_dir"]) != run_dir

    report = run_rag("eval", "report", str(run_dir), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert (run_dir / "report.html").is_file() and "data:image/png;base64," in (run_dir / "report.html").read_text()
    compared = run_rag("eval", "compare", str(run_dir), second["run_dir"], "--json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["metrics"]["nDCG@10"]["delta"] == 0

    (dataset / "corpus.jsonl").write_text((dataset / "corpus.jsonl").read_text() + json.dumps({"_id": "d5", "title": "x", "text": "zebra"}) + "\n")
    third = json.loads(run_rag(*args, cwd=tmp_path).stdout)
    assert third["configs"]["bm25"]["index"] != str(index_dir)  # a changed corpus is a different dataset


def test_missing_dataset_files_are_a_clear_error(tmp_path: Path) -> None:
    result = run_rag("eval", "retrieval", "--dataset", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 3 and "corpus.jsonl not found" in result.stderr and "Traceback" not in result.stderr


def test_gold_set_is_scored_by_source_file(tmp_path: Path) -> None:
    """eval/bench_retrieval.py's gold table: relevant documents are files named relative to the corpus's parent."""
    from rag.evaluate.datasets import load_gold_retrieval
    from rag.evaluate.retrieval import evaluate_retrieval
    from tests.fake_openai import FakeOpenAI
    from tests.helpers import fake_endpoint_config

    corpus = tmp_path / "data"
    corpus.mkdir()
    (corpus / "vacation.md").write_text("# Vacation\n\nNew employees get twenty vacation days per year.\n")
    (corpus / "laptops.txt").write_text("Report a lost laptop to the security team within one hour.\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "question": "how many vacation days do new employees get", "answers": ["twenty"], "sources": ["data/vacation.md"]},
        {"id": "b", "question": "who do I tell about a lost laptop", "answers": ["security"], "sources": ["data/laptops.txt"]},
        {"id": "c", "question": "what is the canteen menu", "answers": [], "sources": []},  # unanswerable: not a retrieval query
    ]) + "\n")
    dataset = load_gold_retrieval(gold, corpus)
    assert dataset.by_source and sorted(dataset.queries) == ["a", "b"] and dataset.qrels["a"] == {"data/vacation.md": 1}
    with FakeOpenAI() as server:
        summary = evaluate_retrieval(dataset, {"default": fake_endpoint_config(server.base_url)}, tmp_path / "cache")
    assert summary["configs"]["default"]["metrics"]["nDCG@10"] == pytest.approx(1.0)
