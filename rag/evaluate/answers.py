"""Answer evaluation: run the pipeline on every question of a JSONL answer set and score the answers.

Answer set, one JSON object per line:
    {"id": "q01", "question": "...", "answers": ["10 paid sick days"], "sources": ["data/handbook.pdf"]}
`answers` may be spelled `answer`, `reference` or `references` (a string or a list of acceptable answers);
`sources` may be spelled `reference_sources`. A question with no answers and no sources is unanswerable.

Metrics per question, each in [0, 1], None where it does not apply (and left out of the mean):
    faithfulness          share of answer sentences the retrieved passages support (judge)
    answer_relevance      the answer addresses the question (judge); None for refusals
    context_precision     rank-weighted precision of passages from a reference source (ragas-style average
                          precision); passages containing a reference answer count when no sources are given
    context_recall        a reference answer is contained in / supported by the passages (judge)
    context_source_recall share of reference sources among the passages
    context_utility       share of passages that support at least one answer sentence (judge)
    citation_precision    share of citations whose cited text supports the sentence that carries it (judge)
    citation_recall       share of answer sentences that carry at least one supporting citation (judge)
    answer_correctness    1 when a reference answer occurs in the answer (case/space-insensitive), else 0
    answer_f1             token F1 of the answer against the best reference answer
    refusal_correctness   unanswerable questions: 1 when the pipeline said the documents do not contain it
    false_refusal         answerable questions: 1 when the pipeline refused (lower is better)

A judge failure (an LLM reply that never parsed) makes that question's metric None and is counted in the
summary's `failures` for the metric: never a silent NaN.
"""

from __future__ import annotations

import hashlib
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluate.datasets import read_jsonl_objects
from rag.evaluate.judges import Judge, JudgeResult
from rag.evaluate.stats import bootstrap_ci
from rag.text_units import CITATION_MARKER, content_terms, sentences, strip_markers

JUDGED = ("faithfulness", "answer_relevance", "context_recall", "context_utility", "citation_precision", "citation_recall")
METRICS = ("faithfulness", "answer_relevance", "context_precision", "context_recall", "context_source_recall", "context_utility",
           "citation_precision", "citation_recall", "answer_correctness", "answer_f1", "refusal_correctness", "false_refusal")
HIGHER_IS_BETTER = {m: m != "false_refusal" for m in METRICS}
_MARKER = CITATION_MARKER


# --- dataset -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AnswerItem:
    id: str
    question: str
    references: list[str]
    sources: list[str]

    @property
    def answerable(self) -> bool:
        return bool(self.references or self.sources)


@dataclass(frozen=True, slots=True)
class AnswerSet:
    name: str
    path: Path
    items: list[AnswerItem]
    fingerprint: str


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    raise ValueError("must be a string or a list of strings")


def load_answer_set(path: Path) -> AnswerSet:
    if not path.is_file():
        raise RagError(f"answer set {path} not found", "pass a JSONL file: one {\"question\", \"answers\", \"sources\"} object per line")
    raw = path.read_bytes()
    items: list[AnswerItem] = []
    seen: set[str] = set()
    for number, where, record in read_jsonl_objects(path, '{"question", "answers", "sources"}'):
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise RagError(f"{where} has no \"question\"", "each line needs a non-empty \"question\" string")
        try:
            references = next((_as_list(record[k]) for k in ("answers", "answer", "references", "reference") if k in record), [])
            sources = next((_as_list(record[k]) for k in ("sources", "reference_sources") if k in record), [])
        except ValueError as exc:
            raise RagError(f"{where}: answers/sources {exc}", "e.g. \"answers\": [\"16 weeks\"], \"sources\": [\"data/handbook.pdf\"]") from None
        item_id = str(record.get("id", f"line{number}"))
        if item_id in seen:
            raise RagError(f"{where}: duplicate id {item_id!r}", "give each question its own id")
        seen.add(item_id)
        items.append(AnswerItem(item_id, question.strip(), references, sources))
    if not items:
        raise RagError(f"answer set {path} has no questions", "one JSON object per line")
    return AnswerSet(path.stem, path, items, hashlib.blake2b(raw, digest_size=16).hexdigest())


# --- text helpers ------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _answer_tokens(text: str) -> list[str]:
    """SQuAD-style: lower case, punctuation and articles removed."""
    text = _MARKER.sub(" ", text.lower())
    text = "".join(" " if ch in string.punctuation and ch not in "$%." else ch for ch in text)
    return [t.strip(".") for t in text.split() if t.strip(".") and t not in ("a", "an", "the")]


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = _answer_tokens(prediction), _answer_tokens(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def same_source(retrieved: str, reference: str) -> bool:
    """Paths as given at ingest may be absolute or relative to another folder: match on whole path parts."""
    a = Path(retrieved).as_posix().lstrip("./")
    b = Path(reference).as_posix().lstrip("./")
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


@dataclass(slots=True)
class Claim:
    text: str  # an answer sentence without citation markers
    citations: list[dict[str, Any]] = field(default_factory=list)  # the citations its markers point at


def claims_of(answer: str, citations: list[dict[str, Any]]) -> list[Claim]:
    """Answer sentences (markers stripped), each with the citations its markers resolve to, in order.

    A marker belongs to the sentence it follows ("... per year. [1]" and "... per year [1]." alike); the n-th
    `[k]` in the text takes the first citation with marker k not yet used.
    """
    stripped, last, markers = "", 0, []
    for match in _MARKER.finditer(answer):
        stripped += answer[last : match.start()]
        markers.append((len(stripped), int(match.group(1))))
        last = match.end()
    stripped += answer[last:]
    spans = [s for s in sentences(stripped) if content_terms(s.text)]
    claims = [Claim(s.text) for s in spans]
    unused = list(citations)
    for position, marker in markers:
        owner = next((i for i in range(len(spans) - 1, -1, -1) if spans[i].start < position), 0 if spans else None)
        citation = next((c for c in unused if c["marker"] == marker), None)
        if owner is None or citation is None:
            continue
        unused.remove(citation)
        claims[owner].citations.append(citation)
    return claims


# --- metrics -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Scored:
    metrics: dict[str, float | None]
    failures: list[dict[str, Any]]  # {"metric", "reason"} per judge failure
    details: dict[str, Any]


class _Tracker:
    def __init__(self) -> None:
        self.failed: dict[str, str] = {}

    def check(self, metric: str, result: JudgeResult) -> JudgeResult:
        if result.failed and metric not in self.failed:
            self.failed[metric] = result.reason
        return result


def score_answer(item: AnswerItem, answer: dict[str, Any], judge: Judge, repeat: int = 0) -> Scored:
    """All metrics of one answer (`answer` in the `answer_to_json` shape: answer, answered, citations, passages)."""
    text, answered = answer["answer"], bool(answer["answered"])
    passages = answer["passages"]
    evidence = [p["text"] for p in passages]
    claims = claims_of(text, answer["citations"]) if answered else []
    tracker = _Tracker()
    metrics: dict[str, float | None] = dict.fromkeys(METRICS)
    details: dict[str, Any] = {}

    # answer vs reference (no judge)
    if item.answerable:
        metrics["false_refusal"] = 0.0 if answered else 1.0
        if item.references:
            metrics["answer_correctness"] = 1.0 if answered and any(normalise(r) in normalise(text) for r in item.references) else 0.0
            metrics["answer_f1"] = round(max(token_f1(text, r) for r in item.references), 4) if answered else 0.0
    else:
        metrics["refusal_correctness"] = 0.0 if answered else 1.0

    # retrieval vs references (no judge, except context recall's fallback)
    if item.answerable and passages:
        relevant = [
            any(same_source(p["source"], s) for s in item.sources) if item.sources
            else any(normalise(r) in normalise(p["text"]) for r in item.references)
            for p in passages
        ]
        hits, precision_sum = 0, 0.0
        for rank, is_relevant in enumerate(relevant, start=1):
            if is_relevant:
                hits += 1
                precision_sum += hits / rank
        metrics["context_precision"] = round(precision_sum / hits, 4) if hits else 0.0
        if item.sources:
            metrics["context_source_recall"] = round(sum(any(same_source(p["source"], s) for p in passages) for s in item.sources) / len(item.sources), 4)
        if item.references:
            joined = normalise(" ".join(evidence))
            if any(normalise(r) in joined for r in item.references):
                metrics["context_recall"] = 1.0
                details["context_recall"] = "a reference answer occurs verbatim in the passages"
            else:
                verdicts = [tracker.check("context_recall", judge.supports(r, evidence, repeat)) for r in item.references]
                if not any(v.failed for v in verdicts):
                    metrics["context_recall"] = 1.0 if any(v.supported for v in verdicts) else 0.0
    elif item.answerable:
        metrics.update(context_precision=0.0, context_recall=0.0 if item.references else None,
                       context_source_recall=0.0 if item.sources else None)

    # the answer vs the passages (judged)
    if answered and claims:
        support = [tracker.check("faithfulness", judge.supports(c.text, evidence, repeat)) for c in claims]
        if not any(r.failed for r in support):
            metrics["faithfulness"] = round(sum(bool(r.supported) for r in support) / len(support), 4)
        details["claims"] = [{"claim": c.text, "supported": r.supported, "score": r.score, "reason": r.reason[:300]} for c, r in zip(claims, support)]
        relevance = tracker.check("answer_relevance", judge.relevance(item.question, strip_markers(text), repeat))
        metrics["answer_relevance"] = relevance.score
        if passages:
            useful, utility_failed = 0, False
            for passage in passages:
                verdicts = []
                for claim in claims:  # stop at the first sentence this passage supports
                    verdict = tracker.check("context_utility", judge.supports(claim.text, [passage["text"]], repeat))
                    verdicts.append(verdict)
                    if verdict.supported:
                        break
                utility_failed |= any(v.failed for v in verdicts) and not any(v.supported for v in verdicts)
                useful += any(v.supported for v in verdicts)
            metrics["context_utility"] = None if utility_failed else round(useful / len(passages), 4)
        cited = [(claim, c) for claim in claims for c in claim.citations]
        verdicts = {id(c): tracker.check("citation_precision", judge.supports(claim.text, [c["text"]], repeat)) for claim, c in cited}
        if not any(v.failed for v in verdicts.values()):
            if cited:
                metrics["citation_precision"] = round(sum(bool(v.supported) for v in verdicts.values()) / len(cited), 4)
            metrics["citation_recall"] = round(sum(any(verdicts[id(c)].supported for c in claim.citations) for claim in claims) / len(claims), 4)
        else:
            tracker.failed.setdefault("citation_recall", tracker.failed["citation_precision"])
    failures = [{"metric": m, "reason": r} for m, r in tracker.failed.items()]
    for failure in failures:
        metrics[failure["metric"]] = None
    return Scored(metrics, failures, details)


# --- the run -------------------------------------------------------------------------------------------
def _row_answer(answer: Any) -> dict[str, Any]:
    from rag.pipeline import answer_to_json

    data = answer_to_json(answer)
    data["citations"] = [{**c, "doc_id": a.doc_id} for c, a in zip(data["citations"], answer.citations)]
    data["passages"] = [{k: p[k] for k in ("number", "source", "doc_id", "page", "start", "end", "score", "text") if k in p} for p in data["passages"]]
    return data


def summarise(per_question: list[list[Scored]], repeats: int) -> dict[str, dict[str, Any]]:
    """Per metric: mean and 95% bootstrap CI over questions (each question's value = its mean over repeats),
    `n` questions with a value, `failures` judge failures over all repeats, and per-repeat means when repeats > 1."""
    out: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        values: list[float | None] = []
        failures = 0
        by_repeat: list[list[float]] = [[] for _ in range(repeats)]
        for runs in per_question:
            kept = [value for r in runs if (value := r.metrics[metric]) is not None]
            failures += sum(any(f["metric"] == metric for f in r.failures) for r in runs)
            values.append(sum(kept) / len(kept) if kept else None)
            for index, r in enumerate(runs):
                if (value := r.metrics[metric]) is not None:
                    by_repeat[index].append(value)
        entry: dict[str, Any] = {**bootstrap_ci(values), "failures": failures}
        if repeats > 1:
            entry["repeat_means"] = [round(sum(v) / len(v), 4) if v else None for v in by_repeat]
        out[metric] = entry
    return out


def evaluate_answers(
    answer_set: AnswerSet,
    configs: dict[str, Any],
    index_dir: Path,
    judge_kind: str = "offline",
    out: Path | None = None,
    progress: Any = None,
    repeats: int = 1,
    cache_dir: Path | None = None,
    seed: int | None = None,
    no_cache: bool = False,
    backend: str = "builtin",
) -> dict[str, Any]:
    """Answer every question with every config (RagConfig by name), score, and write a run folder if `out`.

    `backend="ragas"` scores the metrics ragas has (RAGAS_METRICS) with ragas against the `llm.*` endpoint;
    citation metrics and the exact reference checks still come from `judge_kind`."""
    from rag.evaluate.judges import DEFAULT_SEED, build_judge
    from rag.evaluate.runs import RunWriter
    from rag.core.progress import Progress
    from rag.pipeline import RagPipeline

    if repeats < 1:
        raise RagError("--repeats must be at least 1", "e.g. --repeats 3")
    from rag.index.backends import open_backend, work_folder

    backend_of_index = open_backend(index_dir)
    if not backend_of_index.exists():
        raise RagError(f"no index at {backend_of_index.location}", f"build it first: rag ingest PATH --index {backend_of_index.location}")
    first = next(iter(configs.values()))
    cache_path = (cache_dir or work_folder(index_dir)) / "judge-cache.sqlite"
    judge: Any = None
    if backend not in ("builtin", "ragas"):
        raise RagError(f"unknown backend {backend!r}", "use --backend builtin or --backend ragas")
    if backend == "ragas":
        from rag.evaluate.ragas_backend import check_ready

        check_ready(first.llm)
    if judge_kind == "llm":  # fail before answering anything when the judge cannot run
        judge = build_judge("llm", first, None, cache_path, seed if seed is not None else DEFAULT_SEED, not no_cache)
    scorer: Any = None
    meta = {"dataset": {"name": answer_set.name, "path": str(answer_set.path), "fingerprint": answer_set.fingerprint,
                        "questions": len(answer_set.items)},
            "configs": list(configs), "index": backend_of_index.location, "judge_kind": judge_kind, "backend": backend, "repeats": repeats}
    writer = RunWriter(out, "answers", meta) if out else None
    summary: dict[str, Any] = {"dataset": answer_set.name, "questions": len(answer_set.items), "repeats": repeats, "configs": {}}
    sink = progress or Progress()
    try:
        for name, config in configs.items():
            if writer:
                writer.write_config(name, config.public_dict())
            label = f"Answering ({name})"
            sink.phase(label, len(answer_set.items))
            per_question: list[list[Scored]] = []
            started = time.perf_counter()
            with RagPipeline.open(index_dir, config) as pipeline:
                if judge is None:
                    judge = build_judge(judge_kind, config, pipeline.index.query_embedder, cache_path)
                if backend == "ragas" and scorer is None:
                    from rag.evaluate.ragas_backend import RagasScorer

                    scorer = RagasScorer(first.llm, pipeline.index.query_embedder, (cache_dir or work_folder(index_dir)) / "ragas-cache",
                                         seed if seed is not None else DEFAULT_SEED, not no_cache)
                for item in answer_set.items:
                    asked = time.perf_counter()
                    answer = _row_answer(pipeline.ask(item.question))
                    seconds = time.perf_counter() - asked
                    runs = [score_answer(item, answer, judge, repeat) for repeat in range(repeats)]
                    if scorer is not None:
                        for repeat, scored in enumerate(runs):
                            _overlay_ragas(scored, *scorer.score(item.question, item.references, answer, repeat))
                    per_question.append(runs)
                    if writer:
                        row = {"config": name, "question": item.question, "answerable": item.answerable,
                               "references": item.references, "sources": item.sources, "answer": answer["answer"],
                               "answered": answer["answered"], "citations": answer["citations"], "passages": answer["passages"],
                               "metrics": runs[0].metrics if repeats == 1 else _mean_metrics(runs),
                               "judge_failures": [{**f, "repeat": i} for i, r in enumerate(runs) for f in r.failures],
                               "judgements": runs[0].details, "seconds": round(seconds, 3)}
                        if repeats > 1:
                            row["metrics_by_repeat"] = [r.metrics for r in runs]
                        writer.write_row(item.id, row)
                    sink.advance(label)
            summary["configs"][name] = {"metrics": summarise(per_question, repeats), "seconds": round(time.perf_counter() - started, 2)}
        summary["judge"] = judge.describe() if judge is not None else {"kind": judge_kind, "approximation": judge_kind != "llm"}
        if scorer is not None:
            summary["judge"]["ragas"] = scorer.describe()
        if writer:
            summary["run_dir"] = str(writer.finish(summary))
    finally:
        for closeable in (judge, scorer):
            if closeable is not None and hasattr(closeable, "close"):
                closeable.close()
    return summary


def _overlay_ragas(scored: Scored, values: dict[str, float | None], failures: list[dict[str, str]]) -> None:
    """Replace the built-in judge's verdicts on the metrics ragas scored with ragas' own."""
    scored.failures = [f for f in scored.failures if f["metric"] not in values] + failures
    scored.metrics.update(values)
    scored.details["ragas"] = values


def _mean_metrics(runs: list[Scored]) -> dict[str, float | None]:
    means: dict[str, float | None] = {}
    for metric in METRICS:
        kept = [value for r in runs if (value := r.metrics[metric]) is not None]
        means[metric] = round(sum(kept) / len(kept), 4) if kept else None
    return means
