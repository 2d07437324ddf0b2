"""The UI's API mode (`rag ui --api URL`): a client of `rag serve` that asks, opens sources and uploads as the
signed-in caller, and turns the server's JSON into the chat page's turns and source views.

No Streamlit here (unit-testable). The API key is held by the caller's session and sent only in the
Authorization header; it never goes into a URL, a log line or an error message.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from rag.cli.ui_cmd import API_ENV, SSO_HEADER_ENV
from rag.core.trace import Trace
from rag.errors import RagError
from ui_support import ChatTurn, SourceView, SpanRef

if TYPE_CHECKING:
    from openai import OpenAI

TIMEOUT_S = 180.0  # an answer by a slow LLM may take long; the server has its own limit (serve.request_timeout_s)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the server says the signed-in person is."""

    name: str
    groups: tuple[str, ...]
    admin: bool

    def describe(self) -> str:
        if self.admin:
            return "admin: reads every document"
        return "groups: " + (", ".join(self.groups) if self.groups else "none (documents without groups only)")


class ApiRefused(RagError):
    """The server answered with an error; `status` is its HTTP status (0: the server could not be reached)."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.status = status


HINTS = {
    401: "check the API key (an administrator creates one with `rag keys create`), then sign in again",
    403: "ask an administrator for a key with the access this needs",
    413: "send fewer or smaller files at a time (the server's limit is serve.max_body_kb)",
    429: "the server (or a proxy in front of it) is refusing too many requests; wait a moment and ask again",
    503: "the server is busy or its index storage is down; try again in a moment",
}
UNREACHABLE_HINT = "start it with `rag serve`, or check the URL given to `rag ui --api`"
BROKEN_HINT = "ask again; if it keeps breaking, check that `rag serve` is still running and read its log"


@dataclass(frozen=True, slots=True)
class ApiEvent:
    """One event of a streamed answer, shaped as rag.pipeline.StreamEvent so the chat page renders both alike:
    `delta` is checked answer text as it arrives, `done` carries the whole answer as /v1/ask's JSON."""

    kind: str
    text: str = ""
    answer: dict[str, Any] | None = None


class RagApi:
    """`rag serve` as one caller: an API key, or the user name an SSO proxy passed to the UI (forwarded in the same
    header to a server that trusts this UI's address for it)."""

    def __init__(self, base_url: str, key: str | None = None, user_header: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        if user_header is not None:
            self._headers[user_header[0]] = user_header[1]

    def me(self) -> Caller:
        found = self._call("GET", "/v1/me")
        return Caller(found["name"], tuple(found["groups"]), bool(found["admin"]))

    def stream(self, question: str, history: list[dict[str, str]], top_k: int | None = None) -> Generator[ApiEvent, None, None]:
        """Ask through /v1/chat/completions with `stream: true`: the answer's text as the server checks it, then
        `done` with the whole answer, passages and trace (the `rag` field of the last chunk, asked for with the
        server's `rag.include_trace` extension). Any failure, before or during the stream, is an ApiRefused."""
        from openai import omit

        messages = [*history, {"role": "user", "content": question}]
        unsigned = {} if "Authorization" in self._headers else {"Authorization": omit}  # SSO: send none, never $OPENAI_API_KEY
        with self._refusals():
            chunks = self._openai().chat.completions.create(
                model="rag", messages=messages, stream=True,  # type: ignore[arg-type]
                extra_body={"rag": {"top_k": top_k, "include_trace": True}}, extra_headers=unsigned,
            )
        with chunks, self._refusals(mid_stream=True):
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield ApiEvent("delta", chunk.choices[0].delta.content)
                answer = (chunk.model_extra or {}).get("rag")
                if answer is not None:
                    if "trace" not in answer:  # a server from before the `rag` request extension ignored it
                        raise ApiRefused(0, f"the rag server at {self.base_url} is older than this UI and sent no trace",
                                         "upgrade the server to the UI's version of rag")
                    yield ApiEvent("done", answer=answer)
                    return
        raise ApiRefused(0, f"the answer from {self.base_url} stopped before it was complete", BROKEN_HINT)

    def _openai(self) -> OpenAI:
        """The `openai` client (it parses the server-sent events) with this caller's headers. No retries: a refusal
        is shown at once."""
        from openai import DefaultHttpxClient, OpenAI

        return OpenAI(base_url=f"{self.base_url}/v1", api_key="unused", default_headers=self._headers, max_retries=0,
                      timeout=TIMEOUT_S, http_client=DefaultHttpxClient(trust_env=False))

    @contextmanager
    def _refusals(self, mid_stream: bool = False) -> Iterator[None]:
        """The `openai` client's errors as ApiRefused, with the server's own message and a fix."""
        import openai

        try:
            yield
        except openai.APIStatusError as exc:
            raise ApiRefused(exc.status_code, _server_message(exc.body, f"HTTP {exc.status_code}"), HINTS.get(exc.status_code, "")) from None
        except openai.APIConnectionError as exc:
            raise _unreachable(self.base_url, exc) from None
        except openai.APIError as exc:  # an error event in the stream: the server failed after it began answering
            status = exc.body.get("code") if isinstance(exc.body, dict) else None
            raise ApiRefused(status if isinstance(status, int) else 500, f"the server stopped answering: {exc.message}", BROKEN_HINT) from None
        except Exception as exc:  # the connection broke mid-stream (the transport's own error types)
            if not mid_stream or not _is_transport_error(exc):
                raise
            raise ApiRefused(0, f"the connection to {self.base_url} broke mid-answer ({type(exc).__name__})", BROKEN_HINT) from None

    def document(self, source: str, doc_id: str) -> dict[str, Any]:
        return self._call("POST", "/v1/document", {"source": source, "doc_id": doc_id})

    def upload(self, files: list[tuple[str, bytes]], groups: list[str] | None) -> dict[str, Any]:
        """Send files to be saved and ingested by the server (admin keys); the ingest report."""
        encoded = [{"name": name, "content_base64": base64.b64encode(content).decode("ascii")} for name, content in files]
        return self._call("POST", "/v1/upload", {"files": encoded, "groups": groups})

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        try:
            response = httpx.request(method, self.base_url + path, json=body, headers=self._headers, timeout=TIMEOUT_S, trust_env=False)
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc) from None
        if response.is_success:
            return response.json()
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        raise ApiRefused(response.status_code, _server_message(error, f"HTTP {response.status_code}"), HINTS.get(response.status_code, ""))


def _unreachable(base_url: str, exc: Exception) -> ApiRefused:
    return ApiRefused(0, f"cannot reach the rag server at {base_url} ({type(exc).__name__})", UNREACHABLE_HINT)


def _server_message(error: object, fallback: str) -> str:
    """The `message` of the server's error object ({message, type, code}), or `fallback`."""
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else fallback


def _is_transport_error(exc: Exception) -> bool:
    """A network failure raised by the HTTP library under the `openai` client (httpx, or its httpx2 fork)."""
    return any(base.__name__ == "TransportError" and base.__module__.split(".")[0].startswith("httpx") for base in type(exc).__mro__)


# --- the server's JSON as the chat page's data -----------------------------------------------------
def chat_turn_from_json(answer: dict[str, Any]) -> ChatTurn:
    """A /v1/ask answer as a ChatTurn. Spans point at (source, doc_id) as the server names them: the source view
    asks the server for the document again, under the caller's permissions."""
    passages = sorted(answer.get("passages", []), key=lambda p: p["number"])
    refs = {p["number"]: SpanRef(p["source"], p["source"], p["doc_id"], p["start"], p["end"], p.get("page")) for p in passages}
    citations: dict[int, SpanRef] = {}
    for c in answer.get("citations", []):  # a marker may cite several spans of its passage: it opens the first
        if c["marker"] in refs:
            citations.setdefault(c["marker"], SpanRef(c["source"], c["source"], refs[c["marker"]].doc_id, c["start"], c["end"], c.get("page")))
    trace = Trace.model_validate(answer.get("trace") or {})
    scores = {c.chunk_id: c.scores for c in trace.candidates}
    rows = []
    for p in passages:
        best: dict[str, float] = {}
        for chunk_id in p.get("chunk_ids", []):
            for stage, score in scores.get(chunk_id, {}).items():
                best[stage] = max(score, best.get(stage, score))
        rows.append({"passage": p["number"], "cited": p["number"] in citations, "source": p["source"], "page": p.get("page"),
                     "heading": " › ".join(p.get("heading_path", [])), "score": round(p["score"], 4),
                     **{s: best.get(s) for s in ("dense", "bm25", "fused", "rerank")}, "chars": p["end"] - p["start"]})
    return ChatTurn(answer["question"], answer["answer"], answer["answered"], citations, rows, refs, trace, short_answer=_short(answer.get("short_answer")))


def _short(value: Any) -> str | None:
    """The short answer's text (an object with `text` in the JSON, or absent)."""
    return value.get("text") if isinstance(value, dict) else value


def source_view_from_json(document: dict[str, Any], ref: SpanRef) -> SourceView:
    """The source viewer's content from /v1/document; a span outside the text (the document changed) is a RagError."""
    text = document["text"]
    if not 0 <= ref.start <= ref.end <= len(text):
        raise RagError(f"the cited span of {ref.source} no longer exists", "the document changed since this answer; ask again")
    heading = next((tuple(s["heading_path"]) for s in document.get("sections", []) if s["start"] <= ref.start < s["end"]), ())
    return SourceView(ref.source, ref.page, int(document.get("pages", 0)), heading, text, ref.start, ref.end)
