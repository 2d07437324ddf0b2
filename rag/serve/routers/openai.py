"""The OpenAI-compatible routes: /v1/models and /v1/chat/completions (JSON, or server-sent events with `stream`)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from rag.errors import RagError
from rag.index.contracts import ApiKey
from rag.core.results import AnswerOut
from rag.pipeline import Query, RagPipeline
from rag.retrieve.filters import Filters
from rag.serve.context import ServerState, acquire, caller, check_text, check_top_k, run_with_pipeline, server
from rag.serve.errors import BODY_ERRORS, ERRORS, TIMEOUT_ERRORS, ApiError, error_body, rag_message
from rag.serve.pool import PipelinePool
from rag.serve.schemas import ChatIn, ChatOptions
from rag.serve.usage import chat_usage

log = logging.getLogger("rag.serve")

CITATIONS_FIELD = "rag"  # the extension field of chat completion responses (see docs/serving.md)

router = APIRouter(tags=["openai"], responses=ERRORS)


@router.get("/v1/models")
async def models(key: ApiKey = Depends(caller)) -> dict[str, Any]:
    """The one model name chat front ends can pick: `rag`."""
    return {"object": "list", "data": [{"id": "rag", "object": "model", "created": 0, "owned_by": "rag"}]}


STREAMED = {
    200: {
        "description": "A chat completion (JSON), or with `stream: true` server-sent events: `data: <chunk JSON>` lines, "
        "then `data: [DONE]`; an error after the stream began is one `data: {\"error\": ...}` event.",
        "content": {
            "text/event-stream": {
                "schema": {  # one event
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {"type": "string", "description": "A chat.completion.chunk as JSON, an error as JSON, or [DONE]."}},
                }
            }
        },
    }
}


@router.post("/v1/chat/completions", responses={**STREAMED, **BODY_ERRORS, **TIMEOUT_ERRORS})
async def chat_completions(body: ChatIn, key: ApiKey = Depends(caller), state: ServerState = Depends(server)) -> Any:
    """OpenAI-compatible chat; `stream: true` sends server-sent events. Citations ride in the `rag` field."""
    question, history = _conversation(body)
    check_text(state.limits, question, "the last user message")
    options = body.rag or ChatOptions()
    check_top_k(state.limits, options.top_k)
    query = Query(question, history, Filters(), key.access, options.top_k)
    extension = _full_answer if options.include_trace else _extension
    reply_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = await run_with_pipeline(state, lambda p: p.ask(query))
        usage = await anyio.to_thread.run_sync(chat_usage, [m.text() for m in body.messages], answer)
        return {
            "id": reply_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}],
            "usage": usage,
            CITATIONS_FIELD: extension(answer),
        }
    # Taken before the response starts, so a full pool is a plain HTTP 503 that clients retry on.
    lease = StreamLease(state.pool, await anyio.to_thread.run_sync(acquire, state.pool, state.limits.queue_timeout_s))
    return StreamingResponse(
        _chat_events(lease, query, extension, reply_id, created, body.model, _usage_counter(body)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(lease.release),  # gives the pipeline back if the stream never started
    )


def _conversation(body: ChatIn) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; earlier user/assistant turns are the history (system prompts are ignored)."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ApiError(422, "the last message must come from the user: it is the question")
    return turns[-1].text(), [{"role": m.role, "content": m.text()} for m in turns[:-1]]


def _usage_counter(body: ChatIn) -> Any:
    """The streamed reply's token counter, or None when the client did not ask for usage."""
    if body.stream_options is None or not body.stream_options.include_usage:
        return None
    messages = [m.text() for m in body.messages]
    return lambda answer: chat_usage(messages, answer)


def _extension(answer: Any) -> dict[str, Any]:
    """The `rag` field: whether the documents answered, the checked citations and the passages shown to the answerer."""
    return AnswerOut.of(answer).model_dump(mode="json", include={"answered", "citations", "passages"})


def _full_answer(answer: Any) -> dict[str, Any]:
    """The `rag` field with `include_trace`: the answer as /v1/ask returns it with its passages and trace."""
    return AnswerOut.of(answer).to_json(passages=True, trace=True)


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
    query: Query,
    extension: Callable[[Any], dict[str, Any]],
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
        events = lease.pipeline.stream(query)
        yield _chunk(reply_id, created, model, {"role": "assistant", "content": ""}, None)
        while True:
            event = await anyio.to_thread.run_sync(next, events, None)
            if event is None:
                break
            if event.kind == "delta":
                yield _chunk(reply_id, created, model, {"content": event.text}, None)
            elif event.kind == "done":
                yield _chunk(reply_id, created, model, {}, "stop", **{CITATIONS_FIELD: extension(event.answer)})
                if usage is not None:
                    counted = await anyio.to_thread.run_sync(usage, event.answer)
                    last = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": counted}
                    yield f"data: {json.dumps(last)}\n\n"
        yield "data: [DONE]\n\n"
    except RagError as exc:
        yield f"data: {json.dumps(error_body(503, rag_message(exc), 'unavailable'))}\n\n"
    except Exception:
        log.exception("chat stream failed")
        yield f"data: {json.dumps(error_body(500, 'internal error (details are in the server log)', 'server_error'))}\n\n"
    finally:
        with anyio.CancelScope(shield=True):
            if events is not None:
                await anyio.to_thread.run_sync(events.close)
            await anyio.to_thread.run_sync(lease.release)
