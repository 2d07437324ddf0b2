"""The API's one error shape and the handlers that produce it.

Every error is JSON `{"error": {"message", "type", "code"}}` (the OpenAI shape), never a traceback; 401/403/404
messages say nothing about which documents exist. `install_error_handlers` maps each exception kind to its status:
an `ApiError` carries its own, a body that is not JSON is 400, a body that breaks the schema 422, a `UsageError`
422, any other `RagError` 503, anything unexpected 500 (logged).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import RagError, Unavailable, UsageError
from rag.serve.schemas import ErrorOut

log = logging.getLogger("rag.serve")

RETRY_AFTER_S = 5  # what a 503 for an unreachable index storage asks clients to wait


class ApiError(Exception):
    """An HTTP error with a message for the client (what went wrong and how to fix it)."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def error_body(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": status}}


def rag_message(exc: RagError) -> str:
    return f"{exc.message}; {exc.hint}" if exc.hint else exc.message


def error_response(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind), status_code=status, headers=headers)


# the error statuses every authenticated endpoint may answer (the OpenAPI `responses` of its route)
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut} for status in (401, 403, 413, 422, 503)}
# ... and those with a JSON body (400: not JSON) or that answer with a pipeline (504: over serve.request_timeout_s)
BODY_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut, "description": "The body is not valid JSON."}}
TIMEOUT_ERRORS: dict[int | str, dict[str, Any]] = {504: {"model": ErrorOut, "description": "Over serve.request_timeout_s."}}


async def unavailable(_: Request | None, exc: Exception) -> JSONResponse:
    """503 with Retry-After: the index's storage is down for now (nothing was changed; the same request may work later)."""
    message = rag_message(exc) if isinstance(exc, RagError) else str(exc)
    return error_response(503, message, "unavailable", {"Retry-After": str(RETRY_AFTER_S)})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers, most specific first in meaning (FastAPI picks by exception class)."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.kind, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            detail = next(p for p in problems if p.get("type") == "json_invalid")
            message = f"the request body is not valid JSON ({detail.get('ctx', {}).get('error', 'parse error')})"
            return error_response(400, message, "invalid_request_error")
        parts = [f"{'.'.join(str(x) for x in p.get('loc', ()) if x != 'body') or 'body'}: {p.get('msg')}" for p in problems[:10]]
        return error_response(422, "invalid request: " + "; ".join(parts), "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "no such endpoint (see /openapi.json)" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, message, "invalid_request_error", exc.headers)  # e.g. 405's Allow

    @app.exception_handler(UsageError)
    async def usage_error(_: Request, exc: UsageError) -> JSONResponse:  # e.g. a filter tag no readable document has
        return error_response(422, rag_message(exc), "invalid_request_error")

    app.add_exception_handler(Unavailable, unavailable)  # type: ignore[arg-type]  # Starlette types handlers loosely

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return error_response(503, rag_message(exc), "unavailable")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal error (details are in the server log)", "server_error")
