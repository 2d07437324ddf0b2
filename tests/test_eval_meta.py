"""`rag eval meta`: judge accuracy, confidence interval, failures, agreement (Cohen's kappa), labels parsing, CLI JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.evaluate.judges import JudgeResult
from rag.evaluate.meta import (
    LabelledPair,
    Prediction,
    agreement,
    evaluate_judges,
    load_labels,
    normalise_label,
    wilson_interval,
)
from tests.conftest import REPO
from tests.helpers import run_rag

# registers the command the way rag/cli/eval_cmd.py does, for as long as it does not yet

# gold labels S S S C C N; the stub says T T F F T F -> tp 2, fn 1, fp 1, tn 2
ITEMS = [
    LabelledPair("a", "claim a", ["evidence a"], "SUPPORT"),
    LabelledPair("b", "claim b", ["evidence b"], "SUPPORT"),
    LabelledPair("c", "claim c", ["evidence c"], "SUPPORT"),
    LabelledPair("d", "claim d", ["evidence d"], "CONTRADICT"),
    LabelledPair("e", "claim e", ["evidence e"], "CONTRADICT"),
    LabelledPair("f", "claim f", ["evidence f"], "NOT_ENOUGH_INFO"),
]
VERDICTS = {"a": True, "b": True, "c": False, "d": False, "e": True, "f": False}


class StubJudge:
    """Verdicts by claim: True/False, "fail" for a judge failure, a float for a score-only result."""

    approximation = True

    def __init__(self, verdicts: dict[str, object], kind: str = "stub", threshold: float = 0.5) -> None:
        self.verdicts = verdicts
        self.kind = kind
        self.threshold = threshold

    def supports(self, claim: str, evidence: list[str], repeat: int = 0) -> JudgeResult:
        verdict = self.verdicts[claim.split()[-1]]
        if verdict == "fail":
            return JudgeResult(None, failed=True, reason="judge reply invalid")
        if isinstance(verdict, float):
            return JudgeResult(verdict)
        return JudgeResult(1.0 if verdict else 0.0, supported=bool(verdict))

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "approximation": True}


def run_meta(items: list[LabelledPair], judges: dict[str, StubJudge], tmp_path: Path, out: Path | None = None) -> dict:
    from rag.evaluate.meta import LabelSet

    return evaluate_judges(LabelSet("stub", tmp_path / "stub.jsonl", "0" * 16, items), judges, out)


def test_metrics_math_on_hand_made_set(tmp_path: Path) -> None:
    summary = run_meta(ITEMS, {"stub": StubJudge(VERDICTS)}, tmp_path)
    result = summary["judges"]["stub"]
    accuracy = result["accuracy"]
    assert accuracy["mean"] == pytest.approx(4 / 6, abs=1e-4)
    assert accuracy["n"] == 6
    assert accuracy["ci_low"] < accuracy["mean"] < accuracy["ci_high"]
    assert 0 <= accuracy["ci_low"] and accuracy["ci_high"] <= 1
    assert result["counts"] == {"true_positive": 2, "false_positive": 1, "false_negative": 1, "true_negative": 2}
    assert result["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["confusion"]["SUPPORT"] == {"supported": 2, "not_supported": 1, "failed": 0}
    assert result["confusion"]["CONTRADICT"] == {"supported": 1, "not_supported": 1, "failed": 0}
    assert result["confusion"]["NOT_ENOUGH_INFO"] == {"supported": 0, "not_supported": 1, "failed": 0}
    # SUPPORT vs CONTRADICT only: 2 + 1 right of 5
    assert result["accuracy_support_vs_contradict"]["mean"] == pytest.approx(0.6)
    assert result["accuracy_support_vs_contradict"]["n"] == 5
    assert summary["labels"] == {"SUPPORT": 3, "CONTRADICT": 2, "NOT_ENOUGH_INFO": 1}


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) == (None, None)
    low, high = wilson_interval(10, 10)  # perfect accuracy still gets a real interval
    assert low < 1.0 and high == 1.0


def test_kappa_of_identical_and_opposite_judges(tmp_path: Path) -> None:
    opposite = {key: not value for key, value in VERDICTS.items()}
    summary = run_meta(ITEMS, {"one": StubJudge(VERDICTS), "same": StubJudge(dict(VERDICTS)), "opposite": StubJudge(opposite)}, tmp_path)
    pairs = {tuple(p["judges"]): p for p in summary["agreement"]}
    assert pairs[("one", "same")]["kappa"] == 1.0 and pairs[("one", "same")]["agreement"] == 1.0
    # the stub says yes to exactly half the items, so the opposite judge disagrees on everything: kappa -1
    assert pairs[("one", "opposite")]["kappa"] == -1.0 and pairs[("one", "opposite")]["agreement"] == 0.0
    assert pairs[("same", "opposite")]["n"] == 6
    # a hand-checked partial case: a = T T F F, b = T F F F -> po 0.75, pe 0.5*0.25 + 0.5*0.75 = 0.5, kappa 0.5
    a = [Prediction(v, None, False, "") for v in (True, True, False, False)]
    b = [Prediction(v, None, False, "") for v in (True, False, False, False)]
    assert agreement(a, b) == {"n": 4, "agreement": 0.75, "kappa": 0.5}
    # both judges constant and equal: kappa is undefined (None), never NaN
    constant = [Prediction(True, None, False, "")] * 3
    assert agreement(constant, constant) == {"n": 3, "agreement": 1.0, "kappa": None}


def test_failures_are_excluded_and_counted(tmp_path: Path) -> None:
    verdicts = {**VERDICTS, "c": "fail", "e": "fail"}  # the two wrong verdicts (c: false negative, e: false positive) fail instead
    summary = run_meta(ITEMS, {"flaky": StubJudge(verdicts), "steady": StubJudge(VERDICTS)}, tmp_path)
    result = summary["judges"]["flaky"]
    assert result["failures"] == 2 and result["judged"] == 4 and result["items"] == 6
    assert result["accuracy"]["n"] == 4 and result["accuracy"]["mean"] == 1.0
    assert result["confusion"]["SUPPORT"]["failed"] == 1 and result["confusion"]["CONTRADICT"]["failed"] == 1
    pair = summary["agreement"][0]
    assert pair["n"] == 4 and pair["agreement"] == 1.0
    assert "NaN" not in json.dumps(summary)


def test_score_only_results_use_the_judge_threshold(tmp_path: Path) -> None:
    scores = {"a": 0.9, "b": 0.7, "c": 0.2, "d": 0.1, "e": 0.65, "f": 0.3}
    summary = run_meta(ITEMS, {"scored": StubJudge(scores, threshold=0.6)}, tmp_path)
    assert summary["judges"]["scored"]["counts"] == {"true_positive": 2, "false_positive": 1, "false_negative": 1, "true_negative": 2}


def test_run_folder(tmp_path: Path) -> None:
    summary = run_meta(ITEMS, {"stub": StubJudge(VERDICTS)}, tmp_path, out=tmp_path / "runs")
    folder = Path(summary["run_dir"])
    assert folder.name.endswith("-meta")
    assert json.loads((folder / "run.json").read_text())["kind"] == "meta"
    rows = [json.loads(line) for line in (folder / "per_query.jsonl").read_text().splitlines()]
    assert [r["query_id"] for r in rows] == list("abcdef")
    assert rows[2]["predictions"]["stub"]["supported"] is False
    assert json.loads((folder / "summary.json").read_text())["judges"]["stub"]["accuracy"]["n"] == 6
    assert (folder / "configs" / "stub.json").is_file()


def test_labels_accept_aliases_and_reject_bad_lines(tmp_path: Path) -> None:
    assert normalise_label("supported") == "SUPPORT"
    assert normalise_label("Refuted") == "CONTRADICT"
    assert normalise_label("not enough info") == "NOT_ENOUGH_INFO"
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in [
        {"id": "1", "claim": "x", "evidence": "y", "label": "support"},
        {"id": "2", "claim": "x", "evidence": ["y", "z"], "label": "refuted"},
        {"id": "3", "claim": "x", "evidence": "y", "label": "not_enough_info"},
    ]) + "\n")
    assert [i.label for i in load_labels(good).items] == ["SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text().splitlines()[0] + "\n\n" + json.dumps({"id": "9", "claim": "x", "evidence": "y", "label": "MAYBE"}) + "\n")
    with pytest.raises(RagError, match=r"line 3.*'MAYBE'"):
        load_labels(bad)
    bad.write_text('{"id": "1", "claim": "x", "evidence": "y", "label": "SUPPORT"}\n{not json\n')
    with pytest.raises(RagError, match="line 2"):
        load_labels(bad)
    bad.write_text('{"id": "1", "claim": "x", "evidence": "", "label": "SUPPORT"}\n')
    with pytest.raises(RagError, match="line 1.*evidence"):
        load_labels(bad)


def test_team_labels_file_is_balanced() -> None:
    labels = load_labels(REPO / "eval" / "gold" / "judge_labels.jsonl")
    counts = {label: sum(i.label == label for i in labels.items) for label in ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")}
    assert len(labels.items) >= 40
    assert counts["SUPPORT"] >= 0.3 * len(labels.items) and counts["CONTRADICT"] >= 0.3 * len(labels.items)
    assert counts["NOT_ENOUGH_INFO"] >= 0.1 * len(labels.items)


def test_cli_json_with_the_lexical_judge(tmp_path: Path) -> None:
    evidence = "On-call stipend: $400 for each full week as primary on call and $200 for each full week as secondary."
    rows = [
        {"id": "s", "claim": "The on-call stipend is $400 for each full week as primary on call.", "evidence": evidence, "label": "SUPPORT"},
        {"id": "c", "claim": "The on-call stipend is $300 for each full week as primary on call.", "evidence": evidence, "label": "CONTRADICT"},
        {"id": "n", "claim": "Incident pay is taxed at a reduced rate.", "evidence": evidence, "label": "not_enough_info"},
    ]
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = run_rag("eval", "meta", "--labels", "labels.jsonl", "--judge", "lexical", "--out", "runs", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary) >= {"dataset", "items", "labels", "judges", "agreement", "run_dir"}
    result = summary["judges"]["lexical"]
    assert result["judge"]["kind"] == "lexical" and result["judge"]["approximation"] is True
    assert set(result["accuracy"]) == {"mean", "ci_low", "ci_high", "n", "interval"}
    assert result["accuracy"]["mean"] == 1.0 and result["failures"] == 0  # the $300 claim fails the figure check
    assert summary["agreement"] == []
    assert (tmp_path / summary["run_dir"] / "summary.json").is_file()
    # a bad label is a clear error with the line number, not a traceback
    (tmp_path / "bad.jsonl").write_text(json.dumps({**rows[0], "label": "TRUE"}) + "\n")
    done = run_rag("eval", "meta", "--labels", "bad.jsonl", "--judge", "lexical", cwd=tmp_path)
    assert done.returncode != 0 and "line 1" in done.stderr and "Traceback" not in done.stderr


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_labels_can_point_into_a_beir_folder(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    write_jsonl(beir / "queries.jsonl", [{"_id": "7", "text": "Aspirin lowers fever."}])
    write_jsonl(beir / "corpus.jsonl", [{"_id": "d1", "title": "Aspirin", "text": "Aspirin reduced fever in 80% of patients."}])
    labels = write_jsonl(tmp_path / "refs.jsonl", [{"id": "p", "query_id": "7", "doc_id": "d1", "label": "SUPPORT"}])
    [item] = load_labels(labels, beir).items
    assert item.claim == "Aspirin lowers fever." and item.evidence == ["Aspirin Aspirin reduced fever in 80% of patients."]
    run_meta([item], {"stub": StubJudge({"fever.": True})}, tmp_path, out=tmp_path / "runs")
    [row] = [json.loads(line) for folder in (tmp_path / "runs").iterdir() for line in (folder / "per_query.jsonl").read_text().splitlines()]
    assert row["ref"] == {"query_id": "7", "doc_id": "d1"} and "claim" not in row and "Aspirin" not in json.dumps(row)  # no dataset text copied
    changed = tmp_path / "beir2"
    changed.mkdir()
    write_jsonl(changed / "queries.jsonl", [{"_id": "7", "text": "Aspirin raises fever."}])
    (changed / "corpus.jsonl").write_text((beir / "corpus.jsonl").read_text())
    assert load_labels(labels, changed).fingerprint != load_labels(labels, beir).fingerprint  # the texts are part of the data
    with pytest.raises(RagError, match="--dataset"):
        load_labels(labels)
    with pytest.raises(RagError, match="'8'"):
        load_labels(write_jsonl(tmp_path / "bad.jsonl", [{"query_id": "8", "doc_id": "d1", "label": "SUPPORT"}]), beir)


def test_original_scifact_claims_use_their_rationale_sentences(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "corpus.jsonl", [{"doc_id": 11, "title": "T", "abstract": ["Intro.", "Drug X cut deaths by half.", "More."]},
                                            {"doc_id": 12, "title": "U", "abstract": ["Drug X had no effect on deaths."]}])
    claims = write_jsonl(tmp_path / "claims_dev.jsonl", [{"id": 5, "claim": "Drug X reduces deaths.", "evidence": {
        "11": [{"sentences": [1], "label": "SUPPORT"}], "12": [{"sentences": [0], "label": "CONTRADICT"}]}, "cited_doc_ids": [11, 12]}])
    items = load_labels(claims, tmp_path).items
    assert [(i.id, i.label, i.evidence) for i in items] == [
        ("5-11", "SUPPORT", ["Drug X cut deaths by half."]), ("5-12", "CONTRADICT", ["Drug X had no effect on deaths."])]


SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason="needs ../shared/datasets/scifact (BEIR SciFact) beside the repo")
def test_team_scifact_labels_resolve_against_the_shared_dataset() -> None:
    labels = load_labels(REPO / "eval" / "gold" / "scifact_judge_labels.jsonl", SCIFACT)
    assert len(labels.items) >= 50
    assert {i.label for i in labels.items} == {"SUPPORT", "CONTRADICT"}
    assert all(i.claim and len(i.evidence[0]) > 200 for i in labels.items)  # a claim and a whole abstract each
