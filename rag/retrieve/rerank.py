"""Second-stage rerankers behind one interface: a local cross-encoder, a /rerank endpoint, or an LLM (listwise).

`rerank.kind` picks one from `rag.core.registry.RERANKERS`: a built-in, or a plug-in (registered, an entry point
in the group `rag.rerankers`, or a dotted path) whose factory is called with the rerank section and the chat
model (None offline). `rag.testing.RerankerContract` checks a reranker against the rules below.

Every reranker takes the fused candidates best-first and returns the same candidates reordered best-first.
Only the first `rerank.candidates` are reranked; the rest follow in their fused order. A reranked candidate
gets `scores["rerank"]`, `ranks["rerank"]` (1-based) and `score` set to its rerank score; a candidate past
the limit keeps its fused `score` and gets only `ranks["rerank"]` (its position in the output).

Heavy libraries (sentence-transformers, torch, httpx) are imported inside methods, so importing this module
is cheap.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rag.config import RerankBase
from rag.core.chat import ChatModel
from rag.core.registry import RERANKERS
from rag.errors import RagError
from rag.types import ScoredChunk

INSTALL_HINT = 'pip install -e ".[rerank]"'
_ASKS_FOR_TEXTS = re.compile(r"missing field\W*texts", re.IGNORECASE)  # TEI's answer to a Cohere-style body


class Reranker(Protocol):
    """One job: a query and candidates (best-first) in, the same candidates reordered best-first out."""

    name: str

    def rerank(self, query: str, candidates: list[ScoredChunk]) -> list[ScoredChunk]: ...


@runtime_checkable
class ListwiseStats(Protocol):
    """What a windowed (listwise) reranker tells the trace about its last `rerank` call."""

    last_failures: int  # windows whose reply could not be read (their order was kept)
    last_windows: int  # windows shown to the model


RerankerFactory = Callable[[RerankBase, ChatModel | None], Reranker]


def build_reranker(config: RerankBase, chat: ChatModel | None) -> Reranker | None:
    """The configured reranker, or None when `rerank.kind` is `none`."""
    if config.kind == "none":
        return None
    factory: RerankerFactory = RERANKERS.resolve(config.kind)
    return factory(config, chat)


# --- the built-in rerankers' factories (named in rag.core.registry.RERANKERS) ------------------------
def cross_encoder_reranker(config: RerankBase, chat: ChatModel | None) -> Reranker:
    return CrossEncoderReranker(config)


def endpoint_reranker(config: RerankBase, chat: ChatModel | None) -> Reranker:
    return EndpointReranker(config, timeout_s=config.timeout_s, max_retries=config.max_retries)


def llm_reranker(config: RerankBase, chat: ChatModel | None) -> Reranker:
    if chat is None:
        raise RagError(
            "rerank.kind is llm but no LLM is configured (llm.provider is none)",
            "set llm.provider (and llm.base_url / llm.gguf_path), or choose another rerank.kind",
        )
    return LLMListwiseReranker(config, chat)


def _apply_order(
    candidates: list[ScoredChunk], head: list[ScoredChunk], ordered: list[tuple[int, float]]
) -> list[ScoredChunk]:
    """Reorder `head` (the reranked prefix of `candidates`) by `ordered` = [(index into head, score)] best-first,
    write the rerank scores and ranks, and append the rest of `candidates` in their original order."""
    if sorted(i for i, _ in ordered) != list(range(len(head))):  # a bug guard: never drop or invent
        raise AssertionError("reranker produced an order that is not a permutation of its candidates")
    result: list[ScoredChunk] = []
    for rank, (index, score) in enumerate(ordered, start=1):
        scored = head[index]
        scored.scores["rerank"] = float(score)
        scored.ranks["rerank"] = rank
        scored.score = float(score)
        result.append(scored)
    for rank, scored in enumerate(candidates[len(head) :], start=len(head) + 1):
        scored.ranks["rerank"] = rank
        result.append(scored)
    return result


def _order_by_scores(scores: Sequence[float]) -> list[tuple[int, float]]:
    """(index, score) best-first; ties (and NaN, which sorts last) keep the incoming order."""
    clean = [float(s) if not math.isnan(float(s)) else -math.inf for s in scores]
    order = sorted(range(len(clean)), key=lambda i: -clean[i])
    return [(i, float(scores[i])) for i in order]


# --------------------------------------------------------------------------------------------------------------
# Cross-encoder (sentence-transformers, local folder only)
# --------------------------------------------------------------------------------------------------------------


class CrossEncoderReranker:
    """A sentence-transformers `CrossEncoder` loaded from a local folder, on CPU. Never downloads."""

    def __init__(self, config: RerankBase, batch_size: int = 16) -> None:
        self.config = config
        self.batch_size = batch_size
        if not config.model_path:
            raise RagError(
                "rerank.kind is cross-encoder but rerank.model_path is not set",
                "set rerank.model_path to a local folder holding a cross-encoder (config.json, weights, tokenizer)",
            )
        self.path = Path(config.model_path).expanduser()
        if not self.path.is_dir():
            raise RagError(
                f"cross-encoder folder not found: {self.path}",
                "rerank.model_path must be a local folder, not a model name (nothing is downloaded): fetch the "
                "model once on a connected machine (e.g. `hf download cross-encoder/ms-marco-MiniLM-L6-v2 "
                "--local-dir DIR`), copy DIR here and point rerank.model_path at it",
            )
        if importlib.util.find_spec("sentence_transformers") is None:
            raise RagError("the cross-encoder reranker needs sentence-transformers and torch", INSTALL_HINT)
        self.name = f"cross-encoder:{self.path.name}"
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:
                raise RagError(f"cannot import sentence-transformers: {exc}", INSTALL_HINT) from None
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bars on the CLI's stderr
            try:
                self._model = CrossEncoder(str(self.path), device="cpu", local_files_only=True)
            except Exception as exc:  # noqa: BLE001 (transformers raises many kinds for a bad folder)
                raise RagError(
                    f"cannot load a cross-encoder from {self.path}: {exc}",
                    "the folder needs a sequence-classification model saved with save_pretrained "
                    "(config.json, model.safetensors, tokenizer files)",
                ) from None
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        return self._model

    def scores(self, query: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        model = self._load()
        values = model.predict(
            [(query, text) for text in texts], batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        values = values.reshape(len(texts), -1)
        if values.shape[1] != 1:
            raise RagError(
                f"the model in {self.path} gives {values.shape[1]} scores per pair; a reranking cross-encoder gives one",
                "use a cross-encoder trained for reranking (num_labels=1), e.g. a ms-marco or bge-reranker model",
            )
        return [float(v) for v in values[:, 0]]

    def rerank(self, query: str, candidates: list[ScoredChunk]) -> list[ScoredChunk]:
        head = candidates[: self.config.candidates]
        scores = self.scores(query, [c.chunk.text for c in head])
        return _apply_order(candidates, head, _order_by_scores(scores))


# --------------------------------------------------------------------------------------------------------------
# Rerank endpoint (vLLM, TEI, Infinity, Cohere/Jina-style)
# --------------------------------------------------------------------------------------------------------------


class EndpointReranker:
    """POST {base_url}/rerank: Cohere/Jina-style body, with a fallback to TEI's body (`texts`) when refused.

    Accepts `{"results": [{"index", "relevance_score"}]}` (vLLM, Cohere, Jina, Infinity) and TEI's
    `[{"index", "score"}]`. Retries connection errors, timeouts, 429 and 5xx with a short backoff.
    """

    max_documents = 32  # per request: TEI's default --max-client-batch-size; scores are per pair, so batching is exact

    def __init__(self, config: RerankBase, timeout_s: float = 60.0, max_retries: int = 2, backoff_s: float = 0.25) -> None:
        if not config.base_url:
            raise RagError(
                "rerank.kind is endpoint but rerank.base_url is not set",
                "set rerank.base_url, e.g. http://localhost:8000/v1 (vLLM) or http://localhost:8080 (TEI)",
            )
        self.config = config
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        base = config.base_url.rstrip("/")
        self.url = base if base.endswith("/rerank") else f"{base}/rerank"
        self.name = f"endpoint:{config.model or 'default'}@{self.url}"
        self._tei_body = False  # switched on when the server asks for TEI's `texts` field
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            headers = {"Content-Type": "application/json"}
            if self.config.api_key is not None:
                headers["Authorization"] = f"Bearer {self.config.api_key.get_secret_value()}"
            self._client = httpx.Client(timeout=self.timeout_s, headers=headers)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        if self._tei_body:
            return {"query": query, "texts": texts, "raw_scores": False}
        body: dict[str, Any] = {"query": query, "documents": texts, "top_n": len(texts)}
        if self.config.model:
            body["model"] = self.config.model
        return body

    def _post(self, query: str, texts: list[str]) -> Any:
        import httpx

        client = self._http()
        attempt = 0
        while True:
            try:
                response = client.post(self.url, json=self._body(query, texts))
            except httpx.TimeoutException:
                if attempt < self.max_retries:
                    attempt += 1
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                raise RagError(
                    f"the rerank endpoint {self.url} did not answer within {self.timeout_s:g} s",
                    "check the server's load and logs, or use --set rerank.kind=none",
                ) from None
            except httpx.TransportError as exc:
                if attempt < self.max_retries:
                    attempt += 1
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                raise RagError(
                    f"cannot reach the rerank endpoint {self.url}: {exc}",
                    "start the rerank server or fix rerank.base_url (or use --set rerank.kind=none)",
                ) from None
            status = response.status_code
            if (status == 429 or status >= 500) and attempt < self.max_retries:
                attempt += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            if status in (400, 422) and not self._tei_body and _ASKS_FOR_TEXTS.search(response.text):
                self._tei_body = True  # TEI: "missing field `texts`"; resend in its format (no retry spent)
                continue
            if status >= 400:
                raise self._http_error(status, response.text)
            try:
                return response.json()
            except ValueError:
                raise RagError(
                    f"the rerank endpoint {self.url} answered with something that is not JSON: {response.text[:200]!r}",
                    "rerank.base_url must point at a rerank API (vLLM, TEI, Infinity, Cohere/Jina-style)",
                ) from None

    def _http_error(self, status: int, text: str) -> RagError:
        detail = _error_detail(text)
        if status in (401, 403):
            return RagError(f"the rerank endpoint {self.url} refused the request (HTTP {status}): {detail}", "check rerank.api_key")
        if status in (404, 405):
            return RagError(
                f"no rerank API at {self.url} (HTTP {status}): {detail}",
                "rerank.base_url must be the server root or its /v1 (the reranker POSTs to {base_url}/rerank), "
                "and the server must serve a reranker model",
            )
        if status < 500:
            return RagError(f"the rerank endpoint {self.url} refused the request (HTTP {status}): {detail}", "check rerank.model")
        return RagError(
            f"the rerank endpoint {self.url} failed (HTTP {status}) after {self.max_retries + 1} attempts: {detail}",
            "check the server's logs, or use --set rerank.kind=none",
        )

    def scores(self, query: str, texts: list[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(texts), self.max_documents):
            batch = texts[start : start + self.max_documents]
            scores.extend(self._parse(self._post(query, batch), len(batch)))
        return scores

    def _parse(self, payload: Any, count: int) -> list[float]:
        """Scores in document order. Documents the server left out score below every returned one."""
        items = payload.get("results", payload.get("data")) if isinstance(payload, dict) else payload
        found: dict[int, float] = {}
        try:
            for item in items:
                index = int(item["index"])
                score = item["relevance_score"] if "relevance_score" in item else item["score"]
                if not 0 <= index < count:
                    raise ValueError(f"index {index} out of range")
                found.setdefault(index, float(score))
        except (TypeError, KeyError, ValueError) as exc:
            raise RagError(
                f"unexpected response from the rerank endpoint {self.url} ({exc}): {json.dumps(payload)[:200]}",
                "the server must answer {\"results\": [{\"index\", \"relevance_score\"}]} or [{\"index\", \"score\"}]",
            ) from None
        if not found:
            raise RagError(f"the rerank endpoint {self.url} returned no scores", "check the server's logs")
        floor = min(found.values()) - 1.0  # left-out documents tie below the lowest score: the stable sort keeps their order
        return [found.get(i, floor) for i in range(count)]

    def rerank(self, query: str, candidates: list[ScoredChunk]) -> list[ScoredChunk]:
        head = candidates[: self.config.candidates]
        if not head:
            return list(candidates)
        scores = self.scores(query, [c.chunk.text for c in head])
        return _apply_order(candidates, head, _order_by_scores(scores))


def _error_detail(text: str) -> str:
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message", payload.get("detail", payload)))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:200]
    return str(payload)[:200]


# --------------------------------------------------------------------------------------------------------------
# LLM listwise (RankGPT-style sliding window)
# --------------------------------------------------------------------------------------------------------------

PASSAGE_WORDS = 300  # each passage shown to the model is cut to this many words

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_CHAIN = re.compile(r"\[?\s*\d+\s*\]?(?:\s*(?:>|,)\s*\[?\s*\d+\s*\]?)+")
_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_NUMBER = re.compile(r"\d+")
_FENCE_TAGS = re.compile(r"<\s*(/?)\s*(passages?)\b", re.IGNORECASE)


def parse_permutation(reply: str, count: int) -> list[int] | None:
    """The order a model gave for passages [1]..[count], as 0-based indices best-first, or None if unparsable.

    Reads the longest chain like `[3] > [1] > [2]` (or `3 > 1 > 2`, `3, 1, 2`); without one, the bracketed
    numbers in reply order. Unknown and repeated numbers are ignored; numbers left out are appended in their
    original order.
    """
    text = _THINK.sub(" ", reply)
    best: list[int] = []
    for match in _CHAIN.finditer(text):
        numbers = _valid(_NUMBER.findall(match.group(0)), count)
        if len(numbers) >= len(best):  # the longest chain; the last one on ties (after any reasoning)
            best = numbers
    if not best:
        best = _valid(_BRACKETED.findall(text), count)
    if not best:
        return None
    return best + [i for i in range(count) if i not in best]


def _valid(numbers: list[str], count: int) -> list[int]:
    seen: list[int] = []
    for number in numbers:
        index = int(number) - 1
        if 0 <= index < count and index not in seen:
            seen.append(index)
    return seen


def _passage_text(text: str) -> str:
    words = text.split()
    shown = " ".join(words[:PASSAGE_WORDS]) + (" …" if len(words) > PASSAGE_WORDS else "")
    return _FENCE_TAGS.sub(lambda m: f"({m.group(1)}{m.group(2)}", shown)  # the data cannot close its fence


class LLMListwiseReranker:
    """RankGPT-style listwise reranking: the model orders a window of numbered passages; the window slides
    from the end of the list to the start by `rerank.step`, so strong passages bubble up to the top.

    Score = 1 / rank. A reply that does not parse leaves its window's order unchanged; `last_failures`
    counts such windows and `last_windows` the windows shown, for the last `rerank` call.
    """

    prompt = "rerank_listwise"

    def __init__(self, config: RerankBase, chat: ChatModel) -> None:
        self.config = config
        self.chat = chat
        self.name = f"llm-listwise:{chat.name}"
        self.last_failures = 0
        self.last_windows = 0

    def windows(self, count: int) -> list[tuple[int, int]]:
        """[start, end) of each window, in the order they are shown: from the end of the list to the start."""
        if count <= 1:
            return []
        size, step = self.config.window, self.config.step
        spans = []
        end, start = count, max(count - size, 0)
        while True:
            spans.append((start, end))
            if start == 0:
                return spans
            end, start = end - step, max(start - step, 0)

    def _messages(self, query: str, texts: list[str]) -> list[dict[str, str]]:
        from rag.prompts import render

        passages = "\n".join(f"[{n}] {_passage_text(t)}" for n, t in enumerate(texts, start=1))
        return [{"role": "user", "content": render(self.prompt, query=query, count=str(len(texts)), passages=passages)}]

    def rerank(self, query: str, candidates: list[ScoredChunk]) -> list[ScoredChunk]:
        head = candidates[: self.config.candidates]
        order = list(range(len(head)))  # order[position] = index into head
        self.last_failures = 0
        self.last_windows = 0
        for start, end in self.windows(len(head)):
            window = order[start:end]
            reply = self.chat.complete(self._messages(query, [head[i].chunk.text for i in window]))
            self.last_windows += 1
            permutation = parse_permutation(reply, len(window))
            if permutation is None:
                self.last_failures += 1
                continue
            order[start:end] = [window[p] for p in permutation]
        return _apply_order(candidates, head, [(index, 1.0 / rank) for rank, index in enumerate(order, start=1)])
