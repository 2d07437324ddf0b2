"""Admin routes: /v1/ingest, /v1/remove, /v1/sources (admin keys only). The server is the index's writer while
one of them runs; a second write at the same time is a 409."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Depends

from rag.core.access import parse_groups
from rag.index.contracts import ApiKey
from rag.serve.context import ServerState, admin, server
from rag.serve.errors import BODY_ERRORS, ERRORS, ApiError
from rag.serve.schemas import ErrorOut, IngestIn, RemoveIn
from rag.serve.writes import check_ingest_roots, ingest_paths, list_sources, write

if TYPE_CHECKING:
    from rag.ingest.pipeline import Ingestor
    from rag.ingest.report import IngestReport

router = APIRouter(tags=["admin"], responses=ERRORS)
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "Another write is running."}, **BODY_ERRORS}


@router.post("/v1/ingest", responses=WRITE_ERRORS)
async def ingest(body: IngestIn, key: ApiKey = Depends(admin), state: ServerState = Depends(server)) -> dict[str, Any]:
    """Add or update documents (admin keys). The server is the index's writer while it runs."""
    if not body.paths and not body.documents:
        raise ApiError(422, "nothing to ingest: give paths (files or folders on the server) or documents")
    check_ingest_roots(body.paths, state.config.serve.ingest_roots)
    groups = _groups_or_422(body.groups, "groups") if body.groups is not None else None
    for document in body.documents:
        if document.groups is not None:
            _groups_or_422(document.groups, f"documents[{document.id!r}].groups")

    def action(ingestor: Ingestor) -> IngestReport:
        return ingestor.ingest(ingest_paths(state.index_dir, state.config, body))

    return await anyio.to_thread.run_sync(write, state.writer, state.index_dir, state.config, action, groups, body.tags)


@router.post("/v1/remove", responses=WRITE_ERRORS)
async def remove(body: RemoveIn, key: ApiKey = Depends(admin), state: ServerState = Depends(server)) -> dict[str, Any]:
    """Remove sources by the path /v1/sources lists, or folders with `recursive` (admin keys)."""

    def action(ingestor: Ingestor) -> IngestReport:
        return ingestor.remove(body.paths, folders=body.recursive)

    return await anyio.to_thread.run_sync(write, state.writer, state.index_dir, state.config, action, None, None)


@router.get("/v1/sources")
async def sources(key: ApiKey = Depends(admin), state: ServerState = Depends(server)) -> list[dict[str, Any]]:
    """Everything indexed, with its reader groups and tags (admin keys)."""
    return await anyio.to_thread.run_sync(list_sources, state.index_dir, state.config)


def _groups_or_422(groups: list[str], where: str) -> list[str]:
    try:
        return list(parse_groups(groups))
    except ValueError as exc:
        raise ApiError(422, f"{where}: {exc}") from None
