"""Routes a chat front end needs beyond /v1/ask (the UI's API mode, `rag ui --api URL`):

- `GET /v1/me`: who the caller is (name, groups, admin), so a UI can say it and offer uploads to admins only;
- `POST /v1/document`: a document's stored text by the `source` and `doc_id` a passage or citation gives, under
  the same permission rule as retrieval (a document the caller may not read is "not found", as if it did not exist);
- `POST /v1/upload`: files sent as base64 in JSON, saved in the index's uploads folder and ingested (admin keys).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from rag.core.access import Access, parse_groups
from rag.index.backends import open_backend
from rag.index.contracts import ApiKey, Catalog
from rag.retrieve.access import SNAPSHOTS
from rag.serve.context import ServerState, admin, caller, run_with_pipeline, server
from rag.serve.errors import BODY_ERRORS, ERRORS, TIMEOUT_ERRORS, ApiError
from rag.serve.schemas import ErrorOut, GroupName
from rag.serve.writes import write

if TYPE_CHECKING:
    from rag.ingest.pipeline import Ingestor
    from rag.ingest.report import IngestReport

router = APIRouter(responses=ERRORS)
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"  # what b64decode(validate=True) takes
NOT_FOUND = "no such document (it was removed, or this key may not read it)"


class DocumentIn(BaseModel):
    source: str = Field(description="The source path as a passage or citation gives it (as given at ingest).")
    doc_id: str = Field(description="The passage's doc_id.")


class UploadFile(BaseModel):
    name: str = Field(description="File name; its extension picks the loader (.pdf, .docx, .md, ...).")
    content_base64: str = Field(pattern=BASE64, description="The file's bytes, base64 (standard alphabet, padded).")


class UploadIn(BaseModel):
    files: list[UploadFile] = Field(min_length=1)
    groups: list[GroupName] | None = Field(None, description="Reader groups of the uploaded documents; none = every reader.")
    tags: list[str] | None = None


def readable_document(manifest: Catalog, source: str, doc_id: str, access: Access) -> dict[str, Any] | None:
    """The stored document, or None when it is not there or `access` may read none of its chunks.

    Called with a pipeline from the server's pool, whose manifest is already inside a read snapshot."""
    snapshot = SNAPSHOTS.current(manifest)
    key = next((k for k, shown in snapshot.display.items() if shown == source), None)
    if key is None:
        return None
    chunks = manifest.chunks_by_id(sorted(manifest.chunk_ids_of(key) & snapshot.visible(access)))
    if not any(chunk.doc_id == doc_id for chunk in chunks):
        return None
    document = manifest.document(key, doc_id)
    if document is None:
        return None
    return {
        "source": source,
        "doc_id": doc_id,
        "title": document.title,
        "text": document.text,
        "pages": len(document.pages),
        "sections": [{"start": s.start, "end": s.end, "heading_path": list(s.heading_path)} for s in document.sections],
    }


def safe_upload_name(name: str) -> str:
    """The file name without folders, control characters or a leading dot (an upload never escapes the uploads folder)."""
    return Path(re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/")).name.lstrip(".") or "upload"



@router.get("/v1/me", tags=["questions"])
async def me(key: ApiKey = Depends(caller)) -> dict[str, Any]:
    """The caller: key (or signed-in user) name, reader groups, and whether it may ingest."""
    return {"name": key.name, "groups": list(key.groups), "admin": key.admin}


@router.post("/v1/document", tags=["questions"],
             responses={404: {"model": ErrorOut, "description": "Not there, or not readable by this key."}, **BODY_ERRORS, **TIMEOUT_ERRORS})
async def document(body: DocumentIn, key: ApiKey = Depends(caller), state: ServerState = Depends(server)) -> dict[str, Any]:
    """A document's stored text (the text citation spans index into), its sections and page count."""
    found = await run_with_pipeline(state, lambda p: readable_document(p.index.manifest, body.source, body.doc_id, key.access))
    if found is None:
        raise ApiError(404, NOT_FOUND, "not_found")
    return found


@router.post("/v1/upload", tags=["admin"], responses={409: {"model": ErrorOut, "description": "Another write is running."}, **BODY_ERRORS})
async def upload(body: UploadIn, key: ApiKey = Depends(admin), state: ServerState = Depends(server)) -> dict[str, Any]:
    """Save the files in the index's uploads folder (same name = replaced) and ingest them (admin keys)."""
    try:
        groups = list(parse_groups(body.groups)) if body.groups is not None else None
    except ValueError as exc:
        raise ApiError(422, f"groups: {exc}") from None
    decoded = [(safe_upload_name(file.name), base64.b64decode(file.content_base64, validate=True)) for file in body.files]
    folder = open_backend(state.index_dir).uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in decoded:
        (folder / name).write_bytes(content)
        paths.append(str(folder / name))

    def action(ingestor: Ingestor) -> IngestReport:
        return ingestor.ingest(paths)

    return await anyio.to_thread.run_sync(write, state.writer, state.index_dir, state.config, action, groups, body.tags)
