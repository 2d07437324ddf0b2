"""`rag eval answers`: answer metrics, offline and LLM judges, judge failures, the judge cache, confidence intervals."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from rag.config import load_config
from rag.evaluate.answers import (
    AnswerSet,
    claims_of,
    evaluate_answers,
    load_answer_set,
    token_f1,
)
from rag.evaluate.stats import bootstrap_ci, t_interval
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from tests.conftest import DATA
from tests.helpers import run_rag
from tests.fake_openai import FakeOpenAI

FILES = ["oncall_policy.md", "release_notes.md", "travel_policy.pdf", "security_policy.pdf"]
QUESTIONS = [
    {"id": "stipend", "question": "How much is the on-call stipend for a full week as primary?", "answers": ["$400"], "sources": ["data/oncall_policy.md"]},
    {"id": "postmortem", "question": "Within how many business days must a postmortem be written after a SEV1?", "answers": ["5 business days"], "sources": ["data/oncall_policy.md"]},
    {"id": "economy", "question": "For which flights is premium economy allowed?", "reference": "6 hours or more", "sources": ["data/travel_policy.pdf"]},
    {"id": "password", "question": "How long must passwords for company accounts be?", "references": ["14 characters"], "sources": ["data/security_policy.pdf"]},
    {"id": "dental", "question": "Which insurance company provides our dental coverage?", "answers": [], "sources": []},
    {"id": "dog", "question": "Can I bring my dog to the Portland office?", "answers": [], "sources": []},
]
def numbers_in(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return []


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval-answers")
    (root / "data").mkdir()
    for name in FILES:
        shutil.copy(DATA / name, root / "data" / name)
    with Index.open(root / "index", load_config(), writable=True) as index:
        Ingestor(index).ingest([str(root / "data")])
    (root / "gold.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return root


@pytest.fixture(scope="module")
def offline_run(workspace: Path) -> tuple[dict, Path]:
    done = run_rag("eval", "answers", "--dataset", "gold.jsonl", "--index", "index", "--out", "runs", "--json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    return summary, workspace / summary["run_dir"]


def rows_of(run_dir: Path) -> dict[str, dict]:
    return {row["query_id"]: row for row in map(json.loads, (run_dir / "per_query.jsonl").read_text().splitlines())}


def test_offline_run_writes_a_run_folder_with_metrics_in_range(offline_run: tuple[dict, Path]) -> None:
    summary, run_dir = offline_run
    for name in ("run.json", "summary.json", "per_query.jsonl", "configs/default.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "summary.json").read_text())["configs"] == summary["configs"]
    assert json.loads((run_dir / "run.json").read_text())["dataset"]["questions"] == 6
    assert summary["judge"]["kind"] == "offline" and summary["judge"]["approximation"] is True
    metrics = summary["configs"]["default"]["metrics"]
    for name, entry in metrics.items():
        assert entry["failures"] == 0, name
        if entry["mean"] is not None:
            assert 0.0 <= entry["ci_low"] <= entry["mean"] <= entry["ci_high"] <= 1.0, name
    assert metrics["refusal_correctness"]["n"] == 2 and metrics["answer_correctness"]["n"] == 4
    assert not any(math.isnan(n) for n in numbers_in(summary))
    rows = rows_of(run_dir)
    assert len(rows) == 6 and all({"question", "answer", "citations", "passages", "references", "metrics", "judge_failures"} <= set(r) for r in rows.values())
    for row in rows.values():
        assert all(v is None or 0.0 <= v <= 1.0 for v in row["metrics"].values())


def test_a_fresh_run_is_keyed_by_query_id_for_report_and_compare(offline_run: tuple[dict, Path]) -> None:
    from rag.evaluate.compare import compare_runs
    from rag.evaluate.report import load_run

    summary, run_dir = offline_run
    assert [json.loads(line)["query_id"] for line in (run_dir / "per_query.jsonl").read_text().splitlines()] == [q["id"] for q in QUESTIONS]
    per_query = load_run(run_dir).per_query("default")
    for metric, stats in summary["configs"]["default"]["metrics"].items():
        assert len(per_query.get(metric, {})) == stats["n"], metric
    compared = compare_runs(run_dir, run_dir)
    assert compared["queries"]["shared"] == len(QUESTIONS) and compared["metrics"]["refusal_correctness"]["n"] == 2


def test_right_answers_and_refusals_score_one(offline_run: tuple[dict, Path]) -> None:
    summary, run_dir = offline_run
    rows = rows_of(run_dir)
    stipend = rows["stipend"]
    assert "$400" in stipend["answer"] and stipend["metrics"]["answer_correctness"] == 1.0
    assert stipend["metrics"]["context_source_recall"] == 1.0 and stipend["metrics"]["refusal_correctness"] is None
    dental = rows["dental"]
    assert dental["answered"] is False and dental["metrics"]["refusal_correctness"] == 1.0
    assert dental["metrics"]["context_recall"] is None and dental["metrics"]["faithfulness"] is None
    # extractive answers are quotes of the passages: the offline judge must find them supported and cited
    metrics = summary["configs"]["default"]["metrics"]
    assert metrics["faithfulness"]["mean"] >= 0.9 and metrics["citation_precision"]["mean"] >= 0.9
    assert metrics["answer_correctness"]["mean"] >= 0.75


def llm_configs(server: FakeOpenAI) -> dict:
    return {"default": load_config(None, ["generation.mode=extractive", "llm.provider=openai", f"llm.base_url={server.base_url}",
                                          "llm.api_key=test-key", "llm.model=fake-judge", "llm.max_retries=0"])}


def small_set(workspace: Path) -> AnswerSet:
    full = load_answer_set(workspace / "gold.jsonl")
    return AnswerSet(full.name, full.path, [i for i in full.items if i.id in ("stipend", "password", "dental")], full.fingerprint)


def judge_requests(server: FakeOpenAI) -> list[dict]:
    return [r for r in server.chat_requests() if "You are grading" in r["messages"][0]["content"]]


def scripted_judge(messages: list[dict[str, str]]) -> str:
    prompt = messages[0]["content"]
    if "whether a claim is supported" in prompt:
        claim = re.search(r"<claim>\n(.*?)\n</claim>", prompt, re.DOTALL).group(1)
        return json.dumps({"reason": "scripted", "supported": "$400" in claim})  # only the stipend claim is supported
    return json.dumps({"reason": "scripted", "relevance": 1})


def test_llm_judge_scores_follow_its_verdicts_and_are_cached(workspace: Path, tmp_path: Path) -> None:
    with FakeOpenAI(chat_reply=scripted_judge) as server:
        summary = evaluate_answers(small_set(workspace), llm_configs(server), workspace / "index", "llm", tmp_path / "runs", cache_dir=tmp_path / "cache")
        first_calls = len(judge_requests(server))
        request = judge_requests(server)[0]
        again = evaluate_answers(small_set(workspace), llm_configs(server), workspace / "index", "llm", None, cache_dir=tmp_path / "cache")
        assert len(judge_requests(server)) == first_calls  # every reply came from the disk cache
    assert first_calls > 0 and again["configs"] == {**again["configs"], "default": {**summary["configs"]["default"], "seconds": again["configs"]["default"]["seconds"]}}
    assert request["temperature"] == 0 and request["seed"] == 1234
    assert request["response_format"]["type"] == "json_schema"
    assert summary["judge"]["approximation"] is False and summary["judge"]["model"] == "fake-judge"
    assert first_calls == summary["judge"]["calls"]
    assert again["judge"]["calls"] == 0 and again["judge"]["cache_hits"] == summary["judge"]["calls"] + summary["judge"]["cache_hits"]
    rows = rows_of(Path(summary["run_dir"]))
    assert rows["stipend"]["metrics"]["faithfulness"] == 1.0 and rows["stipend"]["metrics"]["citation_precision"] == 1.0
    assert rows["password"]["metrics"]["faithfulness"] == 0.0 and rows["password"]["metrics"]["citation_recall"] == 0.0
    metrics = summary["configs"]["default"]["metrics"]
    assert metrics["answer_relevance"]["mean"] == 0.5 and metrics["answer_relevance"]["n"] == 2
    assert metrics["faithfulness"]["mean"] == 0.5 and metrics["faithfulness"]["failures"] == 0


def test_garbage_judge_replies_are_retried_then_counted_as_failures(workspace: Path, tmp_path: Path) -> None:
    with FakeOpenAI(chat_reply=lambda messages: "Sure! The claim looks supported to me.") as server:
        summary = evaluate_answers(small_set(workspace), llm_configs(server), workspace / "index", "llm", tmp_path / "runs", cache_dir=tmp_path / "cache")
        requests = judge_requests(server)
    first_tries = [r for r in requests if len(r["messages"]) == 1]
    retries = [r for r in requests if len(r["messages"]) == 3 and "That reply is invalid" in r["messages"][-1]["content"]]
    assert first_tries and len(retries) == 2 * len(first_tries) == len(requests) - len(first_tries)  # one call and two retries each
    metrics = summary["configs"]["default"]["metrics"]
    assert metrics["faithfulness"]["failures"] == 2 and metrics["faithfulness"]["mean"] is None and metrics["faithfulness"]["n"] == 0
    assert metrics["answer_relevance"]["failures"] == 2
    assert metrics["answer_correctness"]["n"] == 2 and metrics["answer_correctness"]["failures"] == 0  # unjudged metrics still count
    stored = json.loads((Path(summary["run_dir"]) / "summary.json").read_text())
    assert not any(math.isnan(n) for n in numbers_in(stored))
    assert "NaN" not in (Path(summary["run_dir"]) / "per_query.jsonl").read_text()
    assert rows_of(Path(summary["run_dir"]))["stipend"]["judge_failures"]


def test_repeats_use_one_seed_per_repeat_and_report_per_repeat_means(workspace: Path, tmp_path: Path) -> None:
    with FakeOpenAI(chat_reply=scripted_judge) as server:
        summary = evaluate_answers(small_set(workspace), llm_configs(server), workspace / "index", "llm", None, repeats=2, cache_dir=tmp_path / "cache")
        seeds = {r["seed"] for r in judge_requests(server)}
    assert seeds == {1234, 1235}
    assert summary["configs"]["default"]["metrics"]["faithfulness"]["repeat_means"] == [0.5, 0.5]


def test_llm_judge_without_an_llm_is_a_clear_error(workspace: Path) -> None:
    done = run_rag("eval", "answers", "--dataset", "gold.jsonl", "--index", "index", "--judge", "llm", cwd=workspace)
    assert done.returncode == 3, done.stderr
    assert "llm.provider" in done.stderr and "OPENAI_API_KEY" not in done.stderr


def test_confidence_intervals_hold_the_mean_narrow_with_data_and_are_reproducible() -> None:
    small = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    large = small * 25
    a, b = bootstrap_ci(small), bootstrap_ci(large)
    assert a["ci_low"] < a["mean"] < a["ci_high"] and b["ci_low"] < b["mean"] < b["ci_high"]
    assert b["ci_high"] - b["ci_low"] < (a["ci_high"] - a["ci_low"]) / 2
    assert bootstrap_ci(small) == a  # seeded
    t_small, t_large = t_interval(small), t_interval(large)
    assert t_small["ci_low"] < t_small["mean"] < t_small["ci_high"] and t_large["ci_high"] - t_large["ci_low"] < t_small["ci_high"] - t_small["ci_low"]
    assert bootstrap_ci([0.5, None]) == {"mean": 0.5, "ci_low": None, "ci_high": None, "n": 1}
    assert bootstrap_ci([1.0, 1.0, 1.0]) == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 3}
    assert bootstrap_ci([])["mean"] is None


def test_markers_attach_to_the_sentence_they_follow_and_f1() -> None:
    citations = [{"marker": 1, "text": "A"}, {"marker": 2, "text": "B"}, {"marker": 1, "text": "C"}]
    claims = claims_of("Employees get 20 days per year. [1] Managers approve leave [2]. Unused days expire. [1]", citations)
    assert [c.text for c in claims] == ["Employees get 20 days per year.", "Managers approve leave.", "Unused days expire."]
    assert [[x["text"] for x in c.citations] for c in claims] == [["A"], ["B"], ["C"]]
    assert token_f1("The stipend is $400 per week", "$400") == pytest.approx(2 * (1 / 5) * 1 / (1 / 5 + 1))
    assert token_f1("nothing", "$400") == 0.0


# --- the ragas backend -------------------------------------------------------------------------------
def ragas_input(messages: list[dict[str, str]]) -> dict:
    """The JSON object ragas puts after the last `input:` of its prompt (the first user message; later ones are re-asks)."""
    prompt = next(m["content"] for m in messages if m["role"] == "user")
    return json.loads(prompt.rsplit("input: ", 1)[1].rsplit("Output:", 1)[0])


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w$]+", text.lower()))


def scripted_ragas(messages: list[dict[str, str]]) -> str:
    """Answers ragas' structured prompts by simple rules; anything about passwords gets a reply that never parses."""
    schema = re.findall(r'"title": "(\w+)"', messages[0]["content"])[-1]
    data = ragas_input(messages)
    if "password" in json.dumps(data).lower():
        return "I think it is fine."
    if schema == "StatementGeneratorOutput":
        return json.dumps({"statements": [s for s in re.split(r"(?<=\.)\s+", data["answer"]) if s.strip()]})
    if schema == "NLIStatementOutput":  # supported = every word of the statement occurs in the context
        return json.dumps({"statements": [{"statement": s, "reason": "scripted", "verdict": int(words(s) <= words(data["context"]))}
                                          for s in data["statements"]]})
    if schema == "AnswerRelevanceOutput":
        return json.dumps({"question": data["response"], "noncommittal": 0})
    if schema == "ContextPrecisionOutput":
        return json.dumps({"reason": "scripted", "verdict": int(data["answer"].lower() in data["context"].lower())})
    if schema == "ContextRecallOutput":
        found = int(data["answer"].lower() in data["context"].lower())
        return json.dumps({"classifications": [{"statement": data["answer"], "reason": "scripted", "attributed": found}]})
    if schema == "ClassificationWithReason":
        return json.dumps({"TP": [{"statement": s, "reason": "scripted"} for s in data["answer"]], "FP": [], "FN": []})
    raise AssertionError(f"unexpected ragas prompt {schema}")


def test_ragas_backend_scores_with_ragas_counts_unparsed_replies_and_caches(workspace: Path, tmp_path: Path) -> None:
    with FakeOpenAI(chat_reply=scripted_ragas) as server:
        summary = evaluate_answers(small_set(workspace), llm_configs(server), workspace / "index", "offline", tmp_path / "runs",
                                   cache_dir=tmp_path / "cache", backend="ragas")
        ragas_calls = [r for r in server.chat_requests() if "json_schema" in r["messages"][0]["content"]]
        again = evaluate_answers(small_set(workspace), llm_configs(server), workspace / "index", "offline", None,
                                 cache_dir=tmp_path / "cache", backend="ragas")
        calls_after = [r for r in server.chat_requests() if "json_schema" in r["messages"][0]["content"]]
    assert ragas_calls and all(r["temperature"] == 0 and r["seed"] == 1234 for r in ragas_calls)
    failed_calls = sum(1 for r in ragas_calls if "password" in json.dumps(r).lower())
    assert len(calls_after) - len(ragas_calls) == failed_calls  # good replies came from the cache; only failed ones were asked again
    ragas_info = summary["judge"]["ragas"]
    assert ragas_info["ragas_version"] == "0.4.3" and "faithfulness" in ragas_info["metrics"] and summary["judge"]["kind"] == "offline"
    rows = rows_of(Path(summary["run_dir"]))
    stipend = rows["stipend"]["metrics"]
    assert stipend["faithfulness"] == 1.0 and stipend["context_recall"] == 1.0 and stipend["context_precision"] > 0
    assert 0.0 < stipend["answer_relevance"] <= 1.0 and 0.75 <= stipend["answer_correctness"] <= 1.0
    assert rows["stipend"]["judgements"]["ragas"]["faithfulness"] == 1.0
    password = rows["password"]
    assert all(password["metrics"][m] is None for m in ("faithfulness", "context_recall", "answer_correctness"))
    assert {f["metric"] for f in password["judge_failures"]} >= {"faithfulness", "context_recall", "answer_correctness"}
    assert all(f["reason"].startswith("ragas:") for f in password["judge_failures"] if f["metric"] == "faithfulness")
    assert password["metrics"]["citation_precision"] is not None  # citation metrics still come from the built-in judge
    dental = rows["dental"]["metrics"]
    assert dental["faithfulness"] is None and dental["answer_correctness"] is None and not rows["dental"]["judge_failures"]
    metrics = summary["configs"]["default"]["metrics"]
    assert metrics["faithfulness"]["failures"] == 1 and metrics["faithfulness"]["n"] == 1
    assert again["configs"]["default"]["metrics"]["faithfulness"] == metrics["faithfulness"]
    assert not any(math.isnan(n) for n in numbers_in(json.loads((Path(summary["run_dir"]) / "summary.json").read_text())))


def test_ragas_scorer_faithfulness_follows_the_verdicts(tmp_path: Path) -> None:
    from rag.evaluate.ragas_backend import RagasScorer

    class UnitVectors:
        def embed(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] for _ in texts]

    answer = {"answer": "The stipend is $400 per week [1]. It is paid in gold bars [1].", "answered": True,
              "passages": [{"text": "The on-call stipend is $400 per week as primary."}]}
    with FakeOpenAI(chat_reply=scripted_ragas) as server:
        config = llm_configs(server)["default"]
        values, failures = RagasScorer(config.llm, UnitVectors(), tmp_path, seed=7, use_cache=False).score(
            "How much is the stipend?", ["$400"], answer)
    assert not failures and values["faithfulness"] == 0.5 and values["context_recall"] == 1.0


def test_ragas_backend_without_an_llm_is_a_clear_error(workspace: Path) -> None:
    done = run_rag("eval", "answers", "--dataset", "gold.jsonl", "--index", "index", "--backend", "ragas", cwd=workspace)
    assert done.returncode == 3, done.stderr
    assert "llm.provider=openai" in done.stderr
