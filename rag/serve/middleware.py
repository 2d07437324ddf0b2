"""ASGI middleware of the API: body size limit, JSON bodies whatever the declared type, one log line per request."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, HTTPException

from rag.config import ServeConfig
from rag.serve.errors import error_body

log = logging.getLogger("rag.serve")


def install_middleware(app: FastAPI, limits: ServeConfig) -> None:
    """Outermost last: the request log sees every answer, the body limit runs before any body is parsed."""
    app.add_middleware(JsonBodies)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_kb * 1024)
    app.add_middleware(RequestLog)


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
