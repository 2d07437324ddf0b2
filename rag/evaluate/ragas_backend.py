"""ragas as an optional scoring backend for `rag eval answers --backend ragas`.

ragas' own metrics (v2 "collections", structured JSON output through `instructor`) score faithfulness,
answer relevance, context precision/recall/utility and answer correctness against the `llm.*` endpoint
(any OpenAI-compatible server; no OpenAI key needed for a local one). Citation metrics and the exact
reference checks stay with this project's scorer: ragas has no notion of citations.

Guarantees kept from the built-in LLM judge: temperature 0 and a fixed seed (repeat r uses seed + r); every
reply cached on disk (one ragas DiskCache folder per endpoint, model and seed, because ragas' cache key is
only the prompt); a metric ragas cannot compute (a reply that never parsed, an endpoint error) is counted as
a judge failure with its reason, never a NaN. Telemetry is switched off before ragas is imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.text_units import strip_markers

RAGAS_METRICS = ("faithfulness", "answer_relevance", "context_precision", "context_recall", "context_utility", "answer_correctness")
RAGAS_PIN = "ragas==0.4.3"


def _import_ragas() -> Any:
    import logging

    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    logging.getLogger("ragas").setLevel(logging.ERROR)  # its retry warnings repeat what the failure counts report
    try:
        from ragas.metrics import collections
    except ImportError as exc:
        raise RagError(f"the ragas backend needs the ragas package ({exc})", 'pip install -e ".[ragas]"') from None
    return collections


def check_ready(llm_config: Any) -> Any:
    """Fail before any question is answered when ragas cannot run: returns ragas' metric collection."""
    if llm_config.provider != "openai":
        raise RagError("the ragas backend needs an OpenAI-compatible judge endpoint",
                       "set llm.provider=openai, llm.base_url=http://HOST:PORT/v1 and llm.model=MODEL")
    return _import_ragas()


class _EmbedderForRagas:
    """The index's query embedder behind ragas' embedding interface (answer relevance, answer correctness)."""

    def __init__(self, embedder: Any) -> None:
        from ragas.embeddings.base import BaseRagasEmbedding

        class Adapter(BaseRagasEmbedding):
            def embed_text(self, text: str, **kwargs: Any) -> list[float]:
                return [float(v) for v in embedder.embed([text])[0]]

            async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
                return self.embed_text(text)

        self.adapter = Adapter()


class RagasScorer:
    """Scores one answer row with ragas; `score()` returns (metrics, failures) for RAGAS_METRICS."""

    def __init__(self, llm_config: Any, embedder: Any, cache_root: Path, seed: int, use_cache: bool = True) -> None:
        self.collections = check_ready(llm_config)
        self.config = llm_config
        self.cache_root = cache_root
        self.seed = seed
        self.use_cache = use_cache
        self.embeddings = _EmbedderForRagas(embedder).adapter
        self._metrics: dict[int, dict[str, Any]] = {}
        self._loop = asyncio.new_event_loop()  # one loop for every call: the async client's connections belong to it

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"backend": "ragas", "ragas_version": version("ragas"), "model": self.config.model, "base_url": self.config.base_url,
                "seed": self.seed, "temperature": 0, "metrics": list(RAGAS_METRICS), "cache": str(self.cache_root)}

    def _llm(self, seed: int) -> Any:
        from ragas.cache import DiskCacheBackend
        from ragas.llms import llm_factory

        from rag.openai_client import openai_client

        client = openai_client("llm", self.config.base_url, self.config.api_key, self.config.timeout_s, self.config.max_retries,
                               asynchronous=True)
        cache = None
        if self.use_cache:
            identity = f"{self.config.base_url}|{self.config.model}|{seed}".encode()
            cache = DiskCacheBackend(cache_dir=str(self.cache_root / hashlib.blake2b(identity, digest_size=8).hexdigest()))
        return llm_factory(self.config.model, client=client, cache=cache, temperature=0, seed=seed,
                           max_tokens=max(self.config.max_tokens, 1024))

    def _metrics_for(self, repeat: int) -> dict[str, Any]:
        if repeat not in self._metrics:
            c, llm = self.collections, self._llm(self.seed + repeat)
            self._metrics[repeat] = {
                "faithfulness": c.Faithfulness(llm=llm),
                "answer_relevance": c.AnswerRelevancy(llm=llm, embeddings=self.embeddings),
                "context_precision": c.ContextPrecisionWithReference(llm=llm),
                "context_recall": c.ContextRecall(llm=llm),
                "context_utility": c.ContextUtilization(llm=llm),
                "answer_correctness": c.AnswerCorrectness(llm=llm, embeddings=self.embeddings),
            }
        return self._metrics[repeat]

    def score(self, question: str, references: list[str], answer: dict[str, Any], repeat: int = 0) -> tuple[dict[str, float | None], list[dict[str, str]]]:
        """ragas scores of one answer (`answer_to_json` shape). Metrics that do not apply are None (refusals
        have no faithfulness/relevance; questions without a reference answer have no reference metrics)."""
        metrics = self._metrics_for(repeat)
        contexts = [p["text"] for p in answer["passages"]]
        response = strip_markers(answer["answer"])
        reference = references[0] if references else None
        calls: dict[str, dict[str, Any]] = {}
        if answer["answered"]:
            calls["faithfulness"] = {"user_input": question, "response": response, "retrieved_contexts": contexts}
            calls["answer_relevance"] = {"user_input": question, "response": response}
            if contexts:
                calls["context_utility"] = {"user_input": question, "response": response, "retrieved_contexts": contexts}
        if reference is not None:
            if contexts:
                calls["context_precision"] = {"user_input": question, "reference": reference, "retrieved_contexts": contexts}
                calls["context_recall"] = {"user_input": question, "reference": reference, "retrieved_contexts": contexts}
            if answer["answered"]:
                calls["answer_correctness"] = {"user_input": question, "response": response, "reference": reference}
        values: dict[str, float | None] = dict.fromkeys(RAGAS_METRICS)
        if reference is not None and not answer["answered"]:
            values["answer_correctness"] = 0.0  # a refusal of an answerable question is wrong, as in the built-in scorer
        results = self._loop.run_until_complete(self._score_all({name: (metrics[name], arguments) for name, arguments in calls.items()}))
        failures: list[dict[str, str]] = []
        for name, (value, problem) in results.items():
            if problem:
                failures.append({"metric": name, "reason": f"ragas: {problem}"})
            else:
                values[name] = value
        return values, failures

    def close(self) -> None:
        self._loop.close()

    @staticmethod
    async def _score_all(calls: dict[str, tuple[Any, dict[str, Any]]]) -> dict[str, tuple[float | None, str | None]]:
        outcomes = await asyncio.gather(*(metric.ascore(**arguments) for metric, arguments in calls.values()), return_exceptions=True)
        return {name: _value_of(outcome) for name, outcome in zip(calls, outcomes)}


def _value_of(outcome: Any) -> tuple[float | None, str | None]:
    """A ragas result or the exception it raised -> (score, None) or (None, why it failed)."""
    import openai

    if isinstance(outcome, BaseException):
        cause: BaseException | None = outcome
        while cause is not None:  # instructor wraps the client's errors
            if isinstance(cause, openai.APIConnectionError):
                raise RagError(f"cannot reach the ragas judge endpoint: {cause}", "start the server or fix llm.base_url") from None
            cause = cause.__cause__ or cause.__context__
        return None, f"{type(outcome).__name__}: {' '.join(str(outcome).split())[:240]}"
    value = getattr(outcome, "value", outcome)
    if not isinstance(value, (int, float)) or math.isnan(float(value)):
        return None, f"no score (got {value!r})"
    return round(float(value), 4), None
