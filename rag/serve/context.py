"""What every route shares: the server's state (index, config, keys, pipelines, writer lock) and the
dependencies that authenticate a caller, run work on a pipeline and check request limits."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.config import RagConfig, ServeConfig
from rag.index.contracts import ApiKey, KeyStore
from rag.pipeline import RagPipeline
from rag.serve.errors import ApiError
from rag.serve.pool import PipelinePool, PoolBusy
from rag.serve.trusted_header import TrustedHeader

T = TypeVar("T")


@dataclass
class ServerState:
    """One per app, kept in `app.state.server`."""

    index_dir: str | os.PathLike[str]
    config: RagConfig
    keys: KeyStore
    pool: PipelinePool
    # one ingest or removal at a time in this process (the index's write lock covers other processes)
    writer: threading.Lock = field(default_factory=threading.Lock)

    @property
    def limits(self) -> ServeConfig:
        return self.config.serve

    @cached_property
    def trusted_header(self) -> TrustedHeader | None:
        """SSO sign-in by a proxy's user header, when serve.trusted_user_header is set."""
        return TrustedHeader.from_config(self.config.serve)


def server(request: Request) -> ServerState:
    return request.app.state.server  # type: ignore[no-any-return]  # starlette's State is untyped


bearer = HTTPBearer(auto_error=False, description="An API key from `rag keys create`.")


def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    state: ServerState = Depends(server),
) -> ApiKey:
    user = state.trusted_header.user(request) if state.trusted_header is not None and credentials is None else None
    if user is not None:  # signed in by an SSO proxy (rag.serve.trusted_header)
        key = state.trusted_header.key_of(state.keys, user)  # type: ignore[union-attr]
        if key is None:
            raise ApiError(403, f"user {user!r} has no access: an admin gives it with `rag keys create --name {user} --groups ...`", "permission_error")
        request.state.key_name = key.name
        return key
    if credentials is None:
        raise ApiError(401, "missing API key: send the header Authorization: Bearer <key>", "authentication_error")
    key = state.keys.authenticate(credentials.credentials)
    if key is None:
        raise ApiError(401, "unknown or revoked API key", "authentication_error")
    request.state.key_name = key.name
    return key


def admin(key: ApiKey = Depends(caller)) -> ApiKey:
    if not key.admin:
        raise ApiError(403, "this key may not do that: ingesting, removing and listing sources need an admin key", "permission_error")
    return key


def acquire(pool: PipelinePool, timeout: float) -> RagPipeline:
    try:
        return pool.acquire(timeout)
    except PoolBusy:
        raise ApiError(503, f"the server is busy: no answer slot freed within {timeout:g} s; retry later", "server_busy") from None


async def run_with_pipeline(state: ServerState, work: Callable[[RagPipeline], T]) -> T:
    """Run `work(pipeline)` on a worker thread within the request time limit."""
    limits = state.limits

    def job() -> T:
        pipeline = acquire(state.pool, limits.queue_timeout_s)
        try:
            return work(pipeline)
        finally:
            state.pool.release(pipeline)

    try:
        with anyio.fail_after(limits.request_timeout_s):
            return await anyio.to_thread.run_sync(job, abandon_on_cancel=True)
    except TimeoutError:
        raise ApiError(504, f"the request took longer than serve.request_timeout_s={limits.request_timeout_s:g} s", "timeout") from None


def check_text(limits: ServeConfig, text: str, what: str) -> None:
    if len(text) > limits.max_question_chars:
        raise ApiError(422, f"{what} is {len(text):,} characters; the limit is {limits.max_question_chars:,} (serve.max_question_chars)")
    if not text.strip():
        raise ApiError(422, f"{what} is empty")


def check_top_k(limits: ServeConfig, top_k: int | None) -> None:
    if top_k is not None and top_k > limits.max_top_k:
        raise ApiError(422, f"top_k={top_k} is above the limit of {limits.max_top_k} (serve.max_top_k)")
