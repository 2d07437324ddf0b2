"""The ASGI app behind `rag serve` (FastAPI): ask, retrieve, OpenAI chat completions, ingest, sources.

Every endpoint but /healthz needs `Authorization: Bearer <key>`. A key's groups become the
`Access` passed to the searcher, so what the key may not read is never ranked, cited or traced.
Errors are JSON `{"error": {"message", "type", "code"}}` (the OpenAI shape) and never a traceback;
401/403/404 messages say nothing about which documents exist.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.config import RagConfig
from rag.core.access import Access, parse_groups
from rag.errors import RagError, Unavailable, UsageError
from rag.index.backends import open_backend
from rag.index.contracts import ApiKey
from rag.pipeline import RagPipeline, answer_to_json
from rag.retrieve.filter_check import nothing_matches
from rag.retrieve.filters import Filters
from rag.serve.pool import PipelinePool, PoolBusy
from rag.serve.reader_routes import reader_routes
from rag.serve.schemas import AskIn, ChatIn, ErrorOut, FiltersIn, IngestIn, RemoveIn, RetrieveIn, RetrieveOut
from rag.serve.trusted_header import TrustedHeader
from rag.serve.usage import chat_usage

if TYPE_CHECKING:
    from rag.ingest.pipeline import Ingestor
    from rag.ingest.report import IngestReport

log = logging.getLogger("rag.serve")

RETRY_AFTER_S = 5  # what a 503 for an unreachable index storage asks clients to wait
CITATIONS_FIELD = "rag"  # the extension field of chat completion responses (see the README)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def error_body(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": status}}


ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def create_app(index_dir: str | os.PathLike[str], config: RagConfig) -> FastAPI:
    """The app over the index at `index_dir` (a folder, or a URL of another backend)."""
    limits = config.serve
    keys = open_backend(index_dir).key_store()
    pool = PipelinePool(index_dir, config, limits.pipelines)
    writer = threading.Lock()  # one ingest or removal at a time in this process (the file lock covers other processes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(_repair_if_interrupted, index_dir, config)
        await anyio.to_thread.run_sync(pool.warm_up)
        yield
        pool.close()

    app = FastAPI(
        title="rag",
        version="1",
        summary="Cited answers over your documents, with per-document permissions.",
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads scripts from a CDN; /openapi.json is the document
        redoc_url=None,
    )
    app.add_middleware(JsonBodies)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_kb * 1024)
    app.add_middleware(RequestLog)
    _install_error_handlers(app)
    app.add_exception_handler(Unavailable, _unavailable)
    bearer = HTTPBearer(auto_error=False, description="An API key from `rag keys create`.")
    trusted = TrustedHeader.from_config(limits)

    def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
        user = trusted.user(request) if trusted is not None and credentials is None else None
        if user is not None:  # signed in by the SSO proxy (rag.serve.trusted_header)
            key = trusted.key_of(keys, user)  # type: ignore[union-attr]
            if key is None:
                raise ApiError(403, f"user {user!r} has no access: an admin gives it with `rag keys create --name {user} --groups ...`", "permission_error")
            request.state.key_name = key.name
            return key
        if credentials is None:
            raise ApiError(401, "missing API key: send the header Authorization: Bearer <key>", "authentication_error")
        key = keys.authenticate(credentials.credentials)
        if key is None:
            raise ApiError(401, "unknown or revoked API key", "authentication_error")
        request.state.key_name = key.name
        return key

    def admin(key: ApiKey = Depends(caller)) -> ApiKey:
        if not key.admin:
            raise ApiError(403, "this key may not do that: ingesting, removing and listing sources need an admin key", "permission_error")
        return key

    async def run_with_pipeline(work: Any) -> Any:
        """Run `work(pipeline)` on a worker thread within the request time limit."""

        def job() -> Any:
            pipeline = _acquire(pool, limits.queue_timeout_s)
            try:
                return work(pipeline)
            finally:
                pool.release(pipeline)

        try:
            with anyio.fail_after(limits.request_timeout_s):
                return await anyio.to_thread.run_sync(job, abandon_on_cancel=True)
        except TimeoutError:
            raise ApiError(504, f"the request took longer than serve.request_timeout_s={limits.request_timeout_s:g} s", "timeout") from None

    def check_text(text: str, what: str) -> None:
        if len(text) > limits.max_question_chars:
            raise ApiError(422, f"{what} is {len(text):,} characters; the limit is {limits.max_question_chars:,} (serve.max_question_chars)")
        if not text.strip():
            raise ApiError(422, f"{what} is empty")

    def check_top_k(top_k: int | None) -> None:
        if top_k is not None and top_k > limits.max_top_k:
            raise ApiError(422, f"top_k={top_k} is above the limit of {limits.max_top_k} (serve.max_top_k)")

    @app.get("/healthz", tags=["service"], responses={503: {"model": ErrorOut}})
    async def healthz() -> Any:
        """Readiness: 200 while the index's storage answers (e.g. its PostgreSQL server), else 503 with the reason.
        Needs no key and says nothing about the documents."""
        try:
            await anyio.to_thread.run_sync(open_backend(index_dir).exists)
        except Unavailable as exc:
            return await _unavailable(None, exc)
        return {"status": "ok"}

    @app.get("/v1/models", tags=["openai"], responses=ERRORS)
    async def models(key: ApiKey = Depends(caller)) -> dict[str, Any]:
        """The one model name chat front ends can pick: `rag`."""
        return {"object": "list", "data": [{"id": "rag", "object": "model", "created": 0, "owned_by": "rag"}]}

    @app.post("/v1/ask", tags=["questions"], responses=ERRORS)
    async def ask(body: AskIn, key: ApiKey = Depends(caller)) -> dict[str, Any]:
        """Answer with checked citations: the JSON of `rag ask --json`, whose `trace` is sent only with `include_trace`."""
        check_text(body.question, "the question")
        check_top_k(body.top_k)
        history = [turn.model_dump() for turn in body.history]
        answer = await run_with_pipeline(
            lambda p: p.ask(body.question, history, _filters(body.filters), key.access, body.top_k)
        )
        shaped = answer_to_json(answer)
        for field, wanted in (("passages", body.include_passages), ("trace", body.include_trace)):
            if not wanted:
                del shaped[field]
        return shaped

    @app.post("/v1/retrieve", tags=["questions"], responses=ERRORS)
    async def retrieve(body: RetrieveIn, key: ApiKey = Depends(caller)) -> RetrieveOut:
        """Ranked chunks with their scores and character spans in the extracted document text."""
        check_text(body.query, "the query")
        check_top_k(body.top_k)
        filters = _filters(body.filters)
        retrieved = await run_with_pipeline(lambda p: p.retrieve(body.query, None, filters, key.access, body.top_k))
        notice = nothing_matches(filters, key.access) if retrieved.trace.get("filters_match_nothing") else None
        return RetrieveOut(query=body.query, results=[_ranked(rank, s) for rank, s in enumerate(retrieved.ranked, start=1)], notice=notice)

    @app.post("/v1/chat/completions", tags=["openai"], responses=ERRORS)
    async def chat_completions(body: ChatIn, key: ApiKey = Depends(caller)) -> Any:
        """OpenAI-compatible chat; `stream: true` sends server-sent events. Citations ride in the `rag` field."""
        question, history = _conversation(body)
        check_text(question, "the last user message")
        reply_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            answer = await run_with_pipeline(lambda p: p.ask(question, history, Filters(), key.access))
            usage = await anyio.to_thread.run_sync(chat_usage, [m.text() for m in body.messages], answer)
            return {
                "id": reply_id,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
                "usage": usage,
                CITATIONS_FIELD: _extension(answer),
            }
        # Taken before the response starts, so a full pool is a plain HTTP 503 that clients retry on.
        lease = StreamLease(pool, await anyio.to_thread.run_sync(_acquire, pool, limits.queue_timeout_s))
        return StreamingResponse(
            _chat_events(lease, question, history, key.access, reply_id, created, body.model, _usage_counter(body)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(lease.release),  # gives the pipeline back if the stream never started
        )

    @app.post("/v1/ingest", tags=["admin"], responses={**ERRORS, 409: {"model": ErrorOut}})
    async def ingest(body: IngestIn, key: ApiKey = Depends(admin)) -> dict[str, Any]:
        """Add or update documents (admin keys). The server is the index's writer while it runs."""
        if not body.paths and not body.documents:
            raise ApiError(422, "nothing to ingest: give paths (files or folders on the server) or documents")
        groups = _groups_or_422(body.groups, "groups") if body.groups is not None else None
        for document in body.documents:
            if document.groups is not None:
                _groups_or_422(document.groups, f"documents[{document.id!r}].groups")
        def action(ingestor: Ingestor) -> IngestReport:
            return ingestor.ingest(_ingest_paths(index_dir, config, body))

        return await anyio.to_thread.run_sync(_write, writer, index_dir, config, action, groups, body.tags)

    @app.post("/v1/remove", tags=["admin"], responses={**ERRORS, 409: {"model": ErrorOut}})
    async def remove(body: RemoveIn, key: ApiKey = Depends(admin)) -> dict[str, Any]:
        """Remove sources by the path /v1/sources lists (admin keys)."""
        return await anyio.to_thread.run_sync(_write, writer, index_dir, config, lambda ingestor: ingestor.remove(body.paths), None, None)

    @app.get("/v1/sources", tags=["admin"], responses=ERRORS)
    async def sources(key: ApiKey = Depends(admin)) -> list[dict[str, Any]]:
        """Everything indexed, with its reader groups and tags (admin keys)."""
        return await anyio.to_thread.run_sync(_sources, index_dir, config)

    async def ingest_uploads(paths: list[str], groups: list[str] | None, tags: list[str] | None) -> dict[str, Any]:
        checked = _groups_or_422(groups, "groups") if groups is not None else None
        return await anyio.to_thread.run_sync(_write, writer, index_dir, config, lambda ingestor: ingestor.ingest(paths), checked, tags)

    app.include_router(reader_routes(caller, admin, run_with_pipeline, open_backend(index_dir).uploads_dir, ingest_uploads, ApiError))
    return app


# --- request handling helpers -----------------------------------------------------------------


def _acquire(pool: PipelinePool, timeout: float) -> RagPipeline:
    try:
        return pool.acquire(timeout)
    except PoolBusy:
        raise ApiError(503, f"the server is busy: no answer slot freed within {timeout:g} s; retry later", "server_busy") from None


def _filters(filters: FiltersIn) -> Filters:
    return Filters(tuple(filters.sources), tuple(filters.file_types), tuple(filters.tags))


def _groups_or_422(groups: list[str], where: str) -> list[str]:
    try:
        return list(parse_groups(groups))
    except ValueError as exc:
        raise ApiError(422, f"{where}: {exc}") from None


def _conversation(body: ChatIn) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; earlier user/assistant turns are the history (system prompts are ignored)."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ApiError(422, "the last message must come from the user: it is the question")
    return turns[-1].text(), [{"role": m.role, "content": m.text()} for m in turns[:-1]]


def _ranked(rank: int, scored: Any) -> dict[str, Any]:
    chunk = scored.chunk
    return {
        "rank": rank,
        "chunk_id": chunk.chunk_id,
        "source": scored.source_display,
        "doc_id": chunk.doc_id,
        "page": chunk.page,
        "start": chunk.start,
        "end": chunk.end,
        "heading_path": list(chunk.heading_path),
        "text": chunk.text,
        "score": scored.score,
        "scores": scored.scores,
    }


def _usage_counter(body: ChatIn) -> Any:
    """The streamed reply's token counter, or None when the client did not ask for usage."""
    if body.stream_options is None or not body.stream_options.include_usage:
        return None
    messages = [m.text() for m in body.messages]
    return lambda answer: chat_usage(messages, answer)


def _extension(answer: Any) -> dict[str, Any]:
    """The `rag` field: whether the documents answered, the checked citations and the passages shown to the answerer."""
    shaped = answer_to_json(answer)
    return {"answered": shaped["answered"], "citations": shaped["citations"], "passages": shaped["passages"]}


def _chunk(reply_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
    payload = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(payload, default=str)}\n\n"


class StreamLease:
    """The pipeline of one streamed reply, given back to the pool exactly once, whichever of the stream's
    end or the response's background task comes first."""

    def __init__(self, pool: PipelinePool, pipeline: RagPipeline) -> None:
        self.pipeline = pipeline
        self._pool = pool
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._pool.release(self.pipeline)


async def _chat_events(
    lease: StreamLease,
    question: str,
    history: list[dict[str, str]],
    access: Access,
    reply_id: str,
    created: int,
    model: str,
    usage: Any = None,
) -> AsyncIterator[str]:
    """SSE chunks: the role, each checked sentence, then a final chunk carrying the citations, then [DONE].

    `usage(answer)`, when the client asked for it (stream_options.include_usage), adds OpenAI's last chunk:
    no choices, the token counts.

    Errors after the first byte can only be SSE error events; a client that disconnects early still gives
    the pipeline back.
    """
    events = None
    try:
        events = lease.pipeline.stream(question, history, Filters(), access)
        yield _chunk(reply_id, created, model, {"role": "assistant", "content": ""}, None)
        while True:
            event = await anyio.to_thread.run_sync(next, events, None)
            if event is None:
                break
            if event.kind == "delta":
                yield _chunk(reply_id, created, model, {"content": event.text}, None)
            elif event.kind == "done":
                yield _chunk(reply_id, created, model, {}, "stop", **{CITATIONS_FIELD: _extension(event.answer)})
                if usage is not None:
                    counted = await anyio.to_thread.run_sync(usage, event.answer)
                    last = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": counted}
                    yield f"data: {json.dumps(last)}\n\n"
        yield "data: [DONE]\n\n"
    except RagError as exc:
        yield f"data: {json.dumps(error_body(503, _rag_message(exc), 'unavailable'))}\n\n"
    except Exception:
        log.exception("chat stream failed")
        yield f"data: {json.dumps(error_body(500, 'internal error (details are in the server log)', 'server_error'))}\n\n"
    finally:
        with anyio.CancelScope(shield=True):
            if events is not None:
                await anyio.to_thread.run_sync(events.close)
            await anyio.to_thread.run_sync(lease.release)


# --- writes ----------------------------------------------------------------------------------


def _write(
    lock: threading.Lock,
    index_dir: str | os.PathLike[str],
    config: RagConfig,
    action: Callable[[Ingestor], IngestReport],
    groups: list[str] | None,
    tags: list[str] | None,
) -> dict[str, Any]:
    """An ingest or removal through the file ingestor (its `IndexWriter` keeps this process's readers fresh)."""
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    if not lock.acquire(blocking=False):
        raise ApiError(409, "an ingest or removal is already running on this server; retry when it has finished", "conflict")
    try:
        try:
            opened = Index.open(index_dir, config, writable=True)
        except Unavailable:
            raise  # the index's storage is down: 503, not a conflict
        except RagError as exc:
            raise ApiError(409, _rag_message(exc), "conflict") from None
        with opened:
            report = action(Ingestor(opened, tags=tags, groups=groups))
        log.info("write: %s", json.dumps({k: v for k, v in report.to_json().items() if not isinstance(v, list)}))
        return report.to_json()
    finally:
        lock.release()


def _ingest_paths(index_dir: str | os.PathLike[str], config: RagConfig, body: IngestIn) -> list[str]:
    """Server-side paths as given, plus the request's documents written to the index's uploads folder as <name>.jsonl."""
    paths = list(body.paths)
    if body.documents:
        fields = config.ingest.jsonl
        uploads = open_backend(index_dir).uploads_dir()
        uploads.mkdir(parents=True, exist_ok=True)
        target = uploads / f"{body.name or 'upload-' + time.strftime('%Y%m%d-%H%M%S') + '-' + uuid.uuid4().hex[:6]}.jsonl"
        records = []
        for document in body.documents:
            record: dict[str, Any] = {fields.id_field: document.id, fields.title_field: document.title, fields.text_field: document.text}
            if document.groups is not None:
                if not fields.groups_field:
                    raise ApiError(422, "per-document groups need ingest.jsonl.groups_field to be set")
                record[fields.groups_field] = document.groups
            records.append(json.dumps(record))
        partial = target.with_suffix(".part")
        partial.write_text("\n".join(records) + "\n", encoding="utf-8")
        partial.replace(target)
        paths.append(str(target))
    return paths


def _sources(index_dir: str | os.PathLike[str], config: RagConfig) -> list[dict[str, Any]]:
    from rag.index.store import Index

    with Index.open(index_dir, config) as opened:
        return [
            {
                "path": r.path,
                "display_path": r.display_path,
                "type": r.file_type,
                "documents": r.documents,
                "chunks": r.chunks,
                "groups": r.group_list,
                "tags": r.tag_list,
                "ingested_at": r.ingested_at,
            }
            for r in opened.manifest.sources()
        ]


def _repair_if_interrupted(index_dir: str | os.PathLike[str], config: RagConfig) -> None:
    """After a crash mid-write, bring the vector store back in line with the manifest (if no one else is writing)."""
    from rag.index.store import Index
    from rag.index.writer import IndexWriter

    try:
        with Index.open(index_dir, config) as opened:
            if not opened.needs_repair():
                return
        with Index.open(index_dir, config, writable=True) as opened:
            report = IndexWriter(opened).repair()
        log.warning("repaired an interrupted write: %s", asdict(report))
    except RagError as exc:
        log.warning("index not repaired at start: %s", exc.message)


async def _unavailable(_: Request | None, exc: Exception) -> JSONResponse:
    """503 with Retry-After: the index's storage is down for now (nothing was changed; the same request may work later)."""
    message = _rag_message(exc) if isinstance(exc, RagError) else str(exc)
    return JSONResponse(error_body(503, message, "unavailable"), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def _rag_message(exc: RagError) -> str:
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


# --- errors, limits, logging -----------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(error_body(exc.status, exc.message, exc.kind), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            detail = next(p for p in problems if p.get("type") == "json_invalid")
            message = f"the request body is not valid JSON ({detail.get('ctx', {}).get('error', 'parse error')})"
            return JSONResponse(error_body(400, message, "invalid_request_error"), status_code=400)
        parts = [f"{'.'.join(str(x) for x in p.get('loc', ()) if x != 'body') or 'body'}: {p.get('msg')}" for p in problems[:10]]
        return JSONResponse(error_body(422, "invalid request: " + "; ".join(parts), "invalid_request_error"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "no such endpoint (see /openapi.json)" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(error_body(exc.status_code, message, "invalid_request_error"), status_code=exc.status_code)

    @app.exception_handler(UsageError)
    async def usage_error(_: Request, exc: UsageError) -> JSONResponse:  # e.g. a filter tag no readable document has
        return JSONResponse(error_body(422, _rag_message(exc), "invalid_request_error"), status_code=422)

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return JSONResponse(error_body(503, _rag_message(exc), "unavailable"), status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(error_body(500, "internal error (details are in the server log)", "server_error"), status_code=500)


class BodyLimit:
    """Refuse bodies above the limit with 413, by Content-Length or while they stream in."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(error_body(413, f"the request body is over the limit of {self.max_bytes // 1024} KiB (serve.max_body_kb)", "invalid_request_error")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class JsonBodies:
    """Read every /v1 body as JSON: `curl -d '{...}'` labels it form-encoded, and no endpoint takes forms."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
            declared = dict(scope.get("headers") or []).get(b"content-type", b"")
            if not declared or declared.startswith(b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTP exceptions through its body parsing untouched."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over the limit of {max_bytes // 1024} KiB (serve.max_body_kb)")


class RequestLog:
    """One log line per request: method, path, status, milliseconds, key name (never the question)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            key = (scope.get("state") or {}).get("key_name", "-")
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s" %s %.1fms key=%s',
                client[0], scope["method"], scope["path"], status["code"], (time.perf_counter() - started) * 1000, key,
            )
