"""Meta-evaluation: how accurate is each faithfulness judge on claims with known SUPPORT / CONTRADICT / NOT_ENOUGH_INFO labels.

A labels file is JSONL, one pair per line:
    {"id": "...", "claim": "...", "evidence": "passage" | ["passage", ...], "label": "SUPPORT"}
Labels: SUPPORT, CONTRADICT, NOT_ENOUGH_INFO (any case; also supported/supports, refuted/refutes, nei).
With a dataset folder (`--dataset`), a line may point into it instead of carrying text, so no dataset text
is copied into a labels file: {"id", "query_id", "doc_id", "label"} reads the claim from queries.jsonl and
the evidence (title and text) from corpus.jsonl of a BEIR folder. The original SciFact release
(claims_*.jsonl: {"id", "claim", "evidence": {doc_id: [{"label", "sentences"}]}}, corpus.jsonl with
"abstract" sentence lists) also works: one pair per claim and evidence document, the evidence being the
rationale sentences.

Each judge's binary verdict (`JudgeResult.supported`, else score >= the judge's threshold) is scored against
"gold label is SUPPORT": accuracy with a 95% Wilson interval, precision/recall/F1 of "supported", accuracy on
the SUPPORT and CONTRADICT items only, and a confusion table by gold label. Judge failures are excluded from
every metric and counted. Judges are compared pairwise (percent agreement and Cohen's kappa) on the items
both judged.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluate.datasets import read_jsonl_objects

LABELS = ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")
_ALIASES = {
    "SUPPORT": "SUPPORT", "SUPPORTS": "SUPPORT", "SUPPORTED": "SUPPORT",
    "CONTRADICT": "CONTRADICT", "CONTRADICTS": "CONTRADICT", "CONTRADICTED": "CONTRADICT",
    "REFUTE": "CONTRADICT", "REFUTES": "CONTRADICT", "REFUTED": "CONTRADICT",
    "NOT_ENOUGH_INFO": "NOT_ENOUGH_INFO", "NOT_ENOUGH_INFORMATION": "NOT_ENOUGH_INFO", "NEI": "NOT_ENOUGH_INFO",
}
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class LabelledPair:
    id: str
    claim: str
    evidence: list[str]
    label: str  # one of LABELS
    ref: dict[str, str] | None = None  # where claim and evidence come from when read from a dataset (run rows keep only this)

    @property
    def gold_supported(self) -> bool:
        return self.label == "SUPPORT"


@dataclass(frozen=True, slots=True)
class LabelSet:
    name: str
    path: Path
    fingerprint: str
    items: list[LabelledPair]


@dataclass(frozen=True, slots=True)
class Prediction:
    supported: bool | None  # None when the judge failed
    score: float | None
    failed: bool
    reason: str


def normalise_label(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    key = value.strip().upper().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key)


class _DatasetTexts:
    """Claims and evidence documents of a dataset folder, read on first use."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._queries: dict[str, str] | None = None
        self._corpus: dict[str, dict[str, Any]] | None = None

    @property
    def used(self) -> bool:
        return self._queries is not None or self._corpus is not None

    def _need(self, where: str) -> Path:
        if self.folder is None:
            raise RagError(f"{where} points into a dataset (query_id/doc_id or SciFact evidence ids)", "pass the dataset folder with --dataset")
        return self.folder

    def claim(self, query_id: str, where: str) -> str:
        if self._queries is None:
            path = self._need(where) / "queries.jsonl"
            self._queries = {str(r["_id"]): r["text"] for _, _, r in read_jsonl_objects(path, '{"_id", "text"}')} if path.is_file() else {}
        if query_id not in self._queries:
            raise RagError(f"{where}: query {query_id!r} is not in {self.folder}/queries.jsonl", "check the dataset folder")
        return self._queries[query_id]

    def document(self, doc_id: str, where: str) -> dict[str, Any]:
        if self._corpus is None:
            path = self._need(where) / "corpus.jsonl"
            if not path.is_file():
                raise RagError(f"{path} not found", "the dataset folder must hold corpus.jsonl")
            self._corpus = {str(r.get("_id", r.get("doc_id"))): r for _, _, r in read_jsonl_objects(path, '{"_id", "title", "text"}')}
        if doc_id not in self._corpus:
            raise RagError(f"{where}: document {doc_id!r} is not in {self.folder}/corpus.jsonl", "check the dataset folder")
        return self._corpus[doc_id]

    def evidence(self, doc_id: str, where: str, sentences: list[int] | None = None) -> list[str]:
        record = self.document(doc_id, where)
        if isinstance(record.get("abstract"), list):  # original SciFact corpus: rationale sentences when given
            chosen = [record["abstract"][i] for i in sentences] if sentences else record["abstract"]
            return [" ".join(chosen)]
        return [" ".join(part for part in (record.get("title", ""), record.get("text", "")) if part).strip()]


def _scifact_pairs(row: dict[str, Any], where: str, texts: _DatasetTexts) -> list[dict[str, Any]]:
    """One labelled row per evidence document of an original SciFact claim."""
    pairs = []
    for doc_id, sets in row["evidence"].items():
        labels = {normalise_label(s.get("label")) for s in sets}
        if len(labels) != 1 or None in labels:
            raise RagError(f"{where}: evidence {doc_id} has labels {sorted(map(str, labels))}", "each evidence document needs one label")
        rationale = sorted({i for s in sets for i in s.get("sentences", [])})
        pairs.append({"id": f"{row.get('id')}-{doc_id}", "claim": row["claim"], "evidence": texts.evidence(str(doc_id), where, rationale),
                      "label": labels.pop(), "_ref": {"claim_id": str(row.get("id")), "doc_id": str(doc_id)}})
    return pairs


def _rows(path: Path, texts: _DatasetTexts) -> list[tuple[int, str, dict[str, Any]]]:
    """Each labels line as {id, claim, evidence, label} rows, dataset references resolved."""
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for number, where, row in read_jsonl_objects(path, "{id, claim, evidence, label}"):
        if isinstance(row.get("evidence"), dict):
            rows += [(number, where, pair) for pair in _scifact_pairs(row, where, texts)]
        elif "query_id" in row and "doc_id" in row:
            rows.append((number, where, {**row, "claim": texts.claim(str(row["query_id"]), where),
                                         "evidence": texts.evidence(str(row["doc_id"]), where),
                                         "_ref": {"query_id": str(row["query_id"]), "doc_id": str(row["doc_id"])}}))
        else:
            rows.append((number, where, row))
    return rows


def load_labels(path: Path, dataset: Path | None = None) -> LabelSet:
    """The labelled pairs of a JSONL file; any bad line is a RagError naming the line. `dataset` resolves
    lines that point into a dataset folder instead of carrying their text."""
    if not path.is_file():
        raise RagError(f"no labels file at {path}", "give a JSONL file of {id, claim, evidence, label} lines")
    raw = path.read_bytes()
    items: list[LabelledPair] = []
    seen: set[str] = set()
    texts = _DatasetTexts(dataset)
    for number, where, row in _rows(path, texts):
        claim = row.get("claim")
        if not isinstance(claim, str) or not claim.strip():
            raise RagError(f"{where}: missing or empty 'claim'", "give the claim as a string")
        evidence = row.get("evidence")
        if isinstance(evidence, str):
            evidence = [evidence]
        if not isinstance(evidence, list) or not evidence or not all(isinstance(e, str) and e.strip() for e in evidence):
            raise RagError(f"{where}: missing or empty 'evidence'", "give the evidence passage as a string or a list of strings")
        label = normalise_label(row.get("label"))
        if label is None:
            raise RagError(f"{where}: label {row.get('label')!r} is not one of {', '.join(LABELS)}",
                           "use SUPPORT, CONTRADICT or NOT_ENOUGH_INFO (also supported / refuted)")
        item_id = str(row.get("id") if row.get("id") is not None else number)
        if item_id in seen:
            raise RagError(f"{where}: duplicate id {item_id!r}", "give every pair its own id")
        seen.add(item_id)
        items.append(LabelledPair(item_id, claim, list(evidence), label, row.get("_ref")))
    if not items:
        raise RagError(f"{path} holds no labelled pairs", "add lines of {id, claim, evidence, label}")
    digest = hashlib.sha256(raw)
    if texts.used:  # the dataset's texts are part of the labelled data
        from rag.evaluate.datasets import hash_files

        digest.update(hash_files([f for f in (texts.folder / "queries.jsonl", texts.folder / "corpus.jsonl") if f.is_file()]).encode())
    return LabelSet(path.stem, path, digest.hexdigest()[:16], items)


def predict(judge: Any, item: LabelledPair) -> Prediction:
    result = judge.supports(item.claim, item.evidence)
    if result.failed or (result.supported is None and result.score is None):
        return Prediction(None, None, True, result.reason)
    supported = result.supported
    if supported is None:
        supported = result.score >= getattr(judge, "threshold", 0.5)
    return Prediction(bool(supported), result.score, False, result.reason)


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def judge_metrics(items: list[LabelledPair], predictions: list[Prediction]) -> dict[str, Any]:
    """Accuracy (+ Wilson 95% CI), precision/recall/F1 of "supported", confusion by gold label; failures excluded, counted."""
    confusion = {label: {"supported": 0, "not_supported": 0, "failed": 0} for label in LABELS}
    tp = fp = fn = tn = 0
    for item, p in zip(items, predictions, strict=True):
        cell = "failed" if p.failed else ("supported" if p.supported else "not_supported")
        confusion[item.label][cell] += 1
        if p.failed:
            continue
        if p.supported and item.gold_supported:
            tp += 1
        elif p.supported:
            fp += 1
        elif item.gold_supported:
            fn += 1
        else:
            tn += 1
    judged = tp + fp + fn + tn
    low, high = wilson_interval(tp + tn, judged)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = round(2 * precision * recall / (precision + recall), 4) if precision and recall else (0.0 if judged else None)
    sc_correct = confusion["SUPPORT"]["supported"] + confusion["CONTRADICT"]["not_supported"]
    sc_n = sum(confusion[label]["supported"] + confusion[label]["not_supported"] for label in ("SUPPORT", "CONTRADICT"))
    sc_low, sc_high = wilson_interval(sc_correct, sc_n)
    return {
        "accuracy": {"mean": _ratio(tp + tn, judged), "ci_low": low, "ci_high": high, "n": judged,
                     "interval": "wilson"},
        "accuracy_support_vs_contradict": {"mean": _ratio(sc_correct, sc_n), "ci_low": sc_low, "ci_high": sc_high,
                                           "n": sc_n, "interval": "wilson"},
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "counts": {"true_positive": tp, "false_positive": fp, "false_negative": fn, "true_negative": tn},
        "confusion": confusion,
        "items": len(items),
        "judged": judged,
        "failures": len(items) - judged,
    }


def agreement(a: list[Prediction], b: list[Prediction]) -> dict[str, Any]:
    """Percent agreement and Cohen's kappa of two judges' binary verdicts, on the items both judged."""
    pairs = [(x.supported, y.supported) for x, y in zip(a, b, strict=True) if not x.failed and not y.failed]
    n = len(pairs)
    if n == 0:
        return {"n": 0, "agreement": None, "kappa": None}
    observed = sum(x == y for x, y in pairs) / n
    a_yes = sum(bool(x) for x, _ in pairs) / n
    b_yes = sum(bool(y) for _, y in pairs) / n
    expected = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
    # kappa is undefined when both judges give one and the same verdict to every item (expected agreement 1)
    kappa = None if expected >= 1 else round((observed - expected) / (1 - expected), 4)
    return {"n": n, "agreement": round(observed, 4), "kappa": kappa}


def evaluate_judges(labels: LabelSet, judges: dict[str, Any], out: Path | None = None, progress: Any = None) -> dict[str, Any]:
    """Run every judge on every labelled pair; summary of per-judge metrics and pairwise agreement, run folder if `out`."""
    from rag.evaluate.runs import RunWriter
    from rag.core.progress import Progress

    sink = progress or Progress()
    meta = {"dataset": {"name": labels.name, "path": str(labels.path), "fingerprint": labels.fingerprint,
                        "items": len(labels.items)}, "configs": list(judges)}
    writer = RunWriter(out, "meta", meta) if out else None
    predictions: dict[str, list[Prediction]] = {}
    for name, judge in judges.items():
        label = f"Judging ({name})"
        sink.phase(label, len(labels.items))
        made = []
        for item in labels.items:
            made.append(predict(judge, item))
            sink.advance(label)
        predictions[name] = made
    gold = {label: sum(item.label == label for item in labels.items) for label in LABELS}
    summary: dict[str, Any] = {"dataset": labels.name, "items": len(labels.items), "labels": gold, "judges": {}, "agreement": []}
    for name, judge in judges.items():
        summary["judges"][name] = {"judge": judge.describe(), **judge_metrics(labels.items, predictions[name])}
    names = list(judges)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            summary["agreement"].append({"judges": [first, second], **agreement(predictions[first], predictions[second])})
    if writer:
        for name, judge in judges.items():
            writer.write_config(name, judge.describe())
        for position, item in enumerate(labels.items):
            texts = {"ref": item.ref} if item.ref else {"claim": item.claim, "evidence": item.evidence}  # never copy a dataset's text
            writer.write_row(item.id, {**texts, "label": item.label,
                              "predictions": {name: {"supported": p[position].supported, "score": p[position].score,
                                                     "failed": p[position].failed,
                                                     "reason": None if item.ref and not p[position].failed else p[position].reason}  # verdict reasons quote the evidence
                                              for name, p in predictions.items()}})
        summary["run_dir"] = str(writer.finish(summary))
    return summary
