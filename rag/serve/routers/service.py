"""Routes about the service itself, answered without a key."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request

from rag.errors import Unavailable
from rag.index.backends import open_backend
from rag.serve.errors import unavailable
from rag.serve.schemas import ErrorOut

router = APIRouter(tags=["service"])


@router.get("/healthz", responses={503: {"model": ErrorOut}})
async def healthz(request: Request) -> Any:
    """Readiness: 200 while the index's storage answers (e.g. its PostgreSQL server), else 503 with the reason.
    Needs no key and says nothing about the documents."""
    try:
        await anyio.to_thread.run_sync(open_backend(request.app.state.server.index_dir).exists)
    except Unavailable as exc:
        return await unavailable(None, exc)
    return {"status": "ok"}
