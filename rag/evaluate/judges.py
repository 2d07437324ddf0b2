"""Judges behind one interface: does the evidence support a claim, does an answer address a question.

    judge.supports(claim, evidence, repeat=0) -> JudgeResult(score, failed, reason, supported)
    judge.relevance(question, answer, repeat=0) -> JudgeResult

Offline judges (no LLM; approximations, labelled as such in every summary):
- `lexical`: content-word coverage of the claim by the best window of 1-2 consecutive evidence sentences;
  every figure in the claim must appear in that window.
- `embedding`: best cosine between the claim and an evidence window (the index's query embedder);
  figures must match too.
- `offline`: the mean of the two, per window (what the extractive answerer itself scores with).

`LLMJudge` asks any OpenAI-compatible endpoint for JSON-schema-constrained verdicts (temperature 0,
a fixed seed + repeat index), caches every reply on disk (SQLite, keyed by model + prompt hash), retries a
reply that does not parse or violates the schema twice, then reports the item as a judge failure
(`failed=True`, `score=None`), never as a number.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag.errors import RagError
from rag.text_units import content_terms, numbers, sentences

if TYPE_CHECKING:
    from rag.config import LLMBase, RagConfig
    from rag.index.contracts import Embedder

ATTEMPTS = 3  # one call and two retries
DEFAULT_SEED = 1234
LEXICAL_THRESHOLD = 0.6
EMBEDDING_THRESHOLD = 0.75
OFFLINE_THRESHOLD = 0.6
RELEVANCE_LEVELS = {0: 0.0, 1: 0.5, 2: 1.0}


@dataclass(frozen=True, slots=True)
class JudgeResult:
    score: float | None  # in [0, 1]; None when the judge failed
    failed: bool = False
    reason: str = ""
    supported: bool | None = None  # the binary verdict support metrics count (None for relevance / failures)


class Judge(Protocol):
    kind: str
    approximation: bool

    def supports(self, claim: str, evidence: list[str], repeat: int = 0) -> JudgeResult: ...

    def relevance(self, question: str, answer: str, repeat: int = 0) -> JudgeResult: ...

    def describe(self) -> dict[str, Any]: ...


# --- offline ------------------------------------------------------------------------------------
def evidence_windows(evidence: list[str]) -> list[str]:
    """Each evidence sentence and each pair of consecutive sentences (of the same evidence text)."""
    windows: list[str] = []
    for text in evidence:
        units = [s.text for s in sentences(text)] or ([text] if text.strip() else [])
        windows.extend(units)
        windows.extend(f"{a} {b}" for a, b in pairwise(units))
    return windows


def _figures_match(claim: str, window: str) -> bool:
    wanted = numbers(claim)
    return not wanted or wanted <= numbers(window)


def lexical_coverage(claim: str, window: str) -> float:
    terms = set(content_terms(claim))
    if not terms:
        return 0.0
    return len(terms & set(content_terms(window))) / len(terms)


class OfflineJudge:
    """Lexical, embedding or combined support; `embedder.embed(list[str])` returns unit vectors."""

    approximation = True

    def __init__(self, method: str = "offline", embedder: Embedder | None = None) -> None:
        if method not in ("lexical", "embedding", "offline"):
            raise RagError(f"unknown offline judge {method!r}", "use lexical, embedding or offline")
        if method != "lexical" and embedder is None:
            raise RagError(f"the {method} judge needs an embedder", "open the index first, or use --judge lexical")
        self.kind = method
        self.embedder = embedder
        self.threshold = {"lexical": LEXICAL_THRESHOLD, "embedding": EMBEDDING_THRESHOLD, "offline": OFFLINE_THRESHOLD}[method]
        self._vectors: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "approximation": True, "threshold": self.threshold,
                "method": {"lexical": "content-word coverage of the claim by the best 1-2 evidence sentences, figures must match",
                           "embedding": "best cosine between the claim and 1-2 evidence sentences, figures must match",
                           "offline": "mean of lexical coverage and embedding cosine per 1-2 evidence sentences, figures must match"}[self.kind]}

    def _embed(self, texts: list[str]) -> list[Any]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            assert self.embedder is not None, "checked in __init__: only the lexical judge has no embedder"
            for text, vector in zip(missing, self.embedder.embed(missing)):
                self._vectors[text] = vector
        return [self._vectors[t] for t in texts]

    def _cosines(self, claim: str, windows: list[str]) -> list[float]:
        import numpy as np

        vectors = self._embed([claim, *windows])
        claim_vector = np.asarray(vectors[0], dtype=float)
        return [max(0.0, min(1.0, float(np.dot(claim_vector, np.asarray(v, dtype=float))))) for v in vectors[1:]]

    def _window_scores(self, claim: str, windows: list[str]) -> list[float]:
        if self.kind == "lexical":
            return [lexical_coverage(claim, w) for w in windows]
        cosines = self._cosines(claim, windows)
        if self.kind == "embedding":
            return cosines
        return [0.5 * lexical_coverage(claim, w) + 0.5 * c for w, c in zip(windows, cosines)]

    def supports(self, claim: str, evidence: list[str], repeat: int = 0) -> JudgeResult:
        windows = evidence_windows(evidence)
        if not windows or not claim.strip():
            return JudgeResult(0.0, reason="no evidence", supported=False)
        scores = self._window_scores(claim, windows)
        best, best_window = 0.0, ""
        for score, window in zip(scores, windows):
            if _figures_match(claim, window) and score > best:
                best, best_window = score, window
        supported = best >= self.threshold
        return JudgeResult(round(best, 4), reason=f"best window: {best_window[:200]!r}" if best_window else "no window carries the claim's figures", supported=supported)

    def relevance(self, question: str, answer: str, repeat: int = 0) -> JudgeResult:
        """Share of the question's content words the answer covers (and/or the question-answer cosine)."""
        lexical = lexical_coverage(question, answer)
        if self.kind == "lexical":
            return JudgeResult(round(lexical, 4))
        cosine = self._cosines(question, [answer])[0]
        score = cosine if self.kind == "embedding" else 0.5 * lexical + 0.5 * cosine
        return JudgeResult(round(score, 4))


# --- LLM ------------------------------------------------------------------------------------------
SUPPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "supported": {"type": "boolean"}},
    "required": ["reason", "supported"],
    "additionalProperties": False,
}
RELEVANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "relevance": {"type": "integer", "enum": [0, 1, 2]}},
    "required": ["reason", "relevance"],
    "additionalProperties": False,
}


class ReplyError(ValueError):
    """A judge reply that is not JSON or does not fit the schema."""


def parse_reply(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The reply as a dict that satisfies `schema` (the small subset used here), or ReplyError."""
    stripped = text.strip()
    if stripped.startswith("```"):  # some servers wrap JSON in a fence despite response_format
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ReplyError(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ReplyError("not a JSON object")
    for key in schema["required"]:
        if key not in data:
            raise ReplyError(f"missing {key!r}")
    for key, rule in schema["properties"].items():
        value = data.get(key)
        kind = rule["type"]
        ok = (kind == "string" and isinstance(value, str)) or (kind == "boolean" and isinstance(value, bool)) or (
            kind == "integer" and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise ReplyError(f"{key!r} is not a {kind}")
        if "enum" in rule and value not in rule["enum"]:
            raise ReplyError(f"{key!r} is {value!r}, not one of {rule['enum']}")
    return data


class JudgeCache:
    """Every judge reply on disk: key = hash(model, messages, schema, seed, temperature)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT, reply TEXT, created REAL)")
        self._db.commit()

    @staticmethod
    def key(model: str, request: dict[str, Any]) -> str:
        payload = json.dumps({"model": model, **request}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, model: str, reply: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, model, reply, time.time()))
        self._db.commit()

    def close(self) -> None:
        self._db.close()


@lru_cache(maxsize=8)
def _template(name: str) -> str:
    from rag.prompts import load_prompt

    return load_prompt(name)


def _fence(texts: list[str]) -> str:
    return "\n\n".join(f'<evidence number="{i}">\n{t.replace("</evidence>", "</ evidence>")}\n</evidence>' for i, t in enumerate(texts, 1))


class LLMJudge:
    """JSON-schema verdicts from an OpenAI-compatible chat endpoint, cached, retried, failures counted."""

    kind = "llm"
    approximation = False

    def __init__(self, llm: LLMBase, cache_path: Path, seed: int = DEFAULT_SEED, use_cache: bool = True) -> None:
        """`llm` is the config's `llm` section (rag.config.LLMConfig)."""
        if llm.provider != "openai":
            raise RagError(
                "the LLM judge needs an OpenAI-compatible chat endpoint, and llm.provider is "
                f"{llm.provider!r}",
                "set llm.provider=openai, llm.base_url and llm.model (e.g. --set llm.provider=openai --set llm.base_url=http://localhost:8000/v1), "
                "or use --judge offline",
            )
        self.llm = llm
        self.model = llm.model
        self.seed = seed
        self.use_cache = use_cache
        self.cache = JudgeCache(cache_path)
        self.calls = 0  # requests sent to the endpoint
        self.cache_hits = 0
        self.failures = 0
        self._client: Any = None

    def describe(self) -> dict[str, Any]:
        return {"kind": "llm", "approximation": False, "model": self.model, "base_url": self.llm.base_url,
                "seed": self.seed, "temperature": 0, "cache": str(self.cache.path),
                "calls": self.calls, "cache_hits": self.cache_hits, "failures": self.failures}

    def close(self) -> None:
        self.cache.close()

    def _complete(self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any], seed: int) -> str:
        from rag.openai_client import endpoint_errors, openai_client

        c = self.llm
        if self._client is None:
            self._client = openai_client("llm", c.base_url, c.api_key, c.timeout_s, c.max_retries)
        request = {"messages": messages, "temperature": 0, "seed": seed,
                   "response_format": {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema, "strict": True}}}
        key = JudgeCache.key(self.model, request)
        if self.use_cache:
            cached = self.cache.get(key)
            if cached is not None:
                self.cache_hits += 1
                return cached
        with endpoint_errors("judge", "llm", c.base_url, "start the server or fix llm.base_url (or use --judge offline)"):
            response = self._client.chat.completions.create(model=self.model, max_tokens=c.max_tokens, **request)
        self.calls += 1
        reply = response.choices[0].message.content or ""
        self.cache.put(key, self.model, reply)
        return reply

    def _ask(self, prompt: str, schema_name: str, schema: dict[str, Any], repeat: int) -> tuple[dict[str, Any] | None, str]:
        messages = [{"role": "user", "content": prompt}]
        problem = ""
        for attempt in range(ATTEMPTS):
            reply = self._complete(messages, schema_name, schema, self.seed + repeat)
            try:
                return parse_reply(reply, schema), ""
            except ReplyError as exc:
                problem = f"attempt {attempt + 1}: {exc}"
                messages = [*messages[:1], {"role": "assistant", "content": reply[:2000]},
                            {"role": "user", "content": f"That reply is invalid ({exc}); this is attempt {attempt + 2} of {ATTEMPTS}. "
                                                        f"Reply with one JSON object matching the schema "
                                                        f"{json.dumps(schema)} and nothing else."}]
        self.failures += 1
        return None, f"judge reply invalid after {ATTEMPTS} attempts ({problem})"

    def supports(self, claim: str, evidence: list[str], repeat: int = 0) -> JudgeResult:
        if not evidence:
            return JudgeResult(0.0, reason="no evidence", supported=False)
        prompt = _template("judge_support").format(claim=claim, evidence=_fence(evidence))
        data, problem = self._ask(prompt, "support_verdict", SUPPORT_SCHEMA, repeat)
        if data is None:
            return JudgeResult(None, failed=True, reason=problem)
        return JudgeResult(1.0 if data["supported"] else 0.0, reason=data["reason"], supported=bool(data["supported"]))

    def relevance(self, question: str, answer: str, repeat: int = 0) -> JudgeResult:
        prompt = _template("judge_relevance").format(question=question, answer=answer)
        data, problem = self._ask(prompt, "relevance_verdict", RELEVANCE_SCHEMA, repeat)
        if data is None:
            return JudgeResult(None, failed=True, reason=problem)
        return JudgeResult(RELEVANCE_LEVELS[data["relevance"]], reason=data["reason"])


def build_judge(kind: str, config: RagConfig, embedder: Embedder | None, cache_path: Path, seed: int = DEFAULT_SEED,
                use_cache: bool = True) -> Judge:
    """`kind`: offline | lexical | embedding | llm. `config` is a RagConfig (its `llm` section feeds the LLM judge)."""
    if kind == "llm":
        return LLMJudge(config.llm, cache_path, seed, use_cache)
    return OfflineJudge(kind, embedder)
