"""The ASGI app behind `rag serve` (FastAPI): ask, retrieve, OpenAI chat completions, ingest, sources.

Every endpoint but /healthz needs `Authorization: Bearer <key>`. A key's groups become the `Access` passed to the
searcher, so what the key may not read is never ranked, cited or traced. The routes live in `rag.serve.routers`
(one module per group), what they share in `rag.serve.context`, the error shape and its handlers in
`rag.serve.errors`, the middleware (body limit, JSON bodies, request log) in `rag.serve.middleware`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from rag.config import RagConfig
from rag.index.backends import open_backend
from rag.serve.context import ServerState
from rag.serve.errors import install_error_handlers
from rag.serve.middleware import install_middleware
from rag.serve.openapi import with_limits
from rag.serve.pool import PipelinePool
from rag.serve.routers import admin, openai, questions, reader, service
from rag.serve.writes import repair_if_interrupted


def create_app(index_dir: str | os.PathLike[str], config: RagConfig) -> FastAPI:
    """The app over the index at `index_dir` (a folder, or a URL of another backend)."""
    state = ServerState(index_dir, config, open_backend(index_dir).key_store(), PipelinePool(index_dir, config, config.serve.pipelines))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(repair_if_interrupted, index_dir, config)
        await anyio.to_thread.run_sync(state.pool.warm_up)
        yield
        state.pool.close()

    app = FastAPI(
        title="rag",
        version="1",
        summary="Cited answers over your documents, with per-document permissions.",
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads scripts from a CDN; /openapi.json is the document
        redoc_url=None,
    )
    app.state.server = state
    install_middleware(app, config.serve)
    install_error_handlers(app)
    for group in (service, openai, questions, reader, admin):
        app.include_router(group.router)
    app.openapi = with_limits(app, config.serve)  # type: ignore[method-assign]  # FastAPI's documented way to change the document
    return app
