"""Routes a chat front end needs beyond /v1/ask (the UI's API mode, `rag ui --api URL`):

- `GET /v1/me`: who the caller is (name, groups, admin), so a UI can say it and offer uploads to admins only;
- `POST /v1/document`: a document's stored text by the `source` and `doc_id` a passage or citation gives, under
  the same permission rule as retrieval (a document the caller may not read is "not found", as if it did not exist);
- `POST /v1/upload`: files sent as base64 in JSON, saved in the index's uploads folder and ingested (admin keys).

Kept apart from rag.serve.app so the app module only includes this router.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from rag.core.access import Access
from rag.index.contracts import ApiKey, Catalog
from rag.pipeline import RagPipeline
from rag.retrieve.access import SNAPSHOTS

NOT_FOUND = "no such document (it was removed, or this key may not read it)"


class DocumentIn(BaseModel):
    source: str = Field(description="The source path as a passage or citation gives it (as given at ingest).")
    doc_id: str = Field(description="The passage's doc_id.")


class UploadFile(BaseModel):
    name: str = Field(description="File name; its extension picks the loader (.pdf, .docx, .md, ...).")
    content_base64: str


class UploadIn(BaseModel):
    files: list[UploadFile] = Field(min_length=1)
    groups: list[str] | None = Field(None, description="Reader groups of the uploaded documents; none = every reader.")
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
    """The file name without folders or a leading dot (an upload never escapes the uploads folder)."""
    return Path(name.replace("\\", "/")).name.lstrip(".") or "upload"


def reader_routes(
    caller: Callable[..., ApiKey],
    admin: Callable[..., ApiKey],
    with_pipeline: Callable[[Callable[[RagPipeline], Any]], Awaitable[Any]],
    uploads_dir: Callable[[], Path],
    ingest: Callable[[list[str], list[str] | None, list[str] | None], Awaitable[dict[str, Any]]],
    error: Callable[[int, str, str], Exception],
) -> APIRouter:
    """The router; `error(status, message, kind)` builds the app's JSON error, `ingest(paths, groups, tags)` writes."""
    router = APIRouter(prefix="/v1")

    @router.get("/me", tags=["questions"])
    async def me(key: ApiKey = Depends(caller)) -> dict[str, Any]:
        """The caller: key (or signed-in user) name, reader groups, and whether it may ingest."""
        return {"name": key.name, "groups": list(key.groups), "admin": key.admin}

    @router.post("/document", tags=["questions"])
    async def document(body: DocumentIn, key: ApiKey = Depends(caller)) -> dict[str, Any]:
        """A document's stored text (the text citation spans index into), its sections and page count."""
        found = await with_pipeline(lambda p: readable_document(p.index.manifest, body.source, body.doc_id, key.access))
        if found is None:
            raise error(404, NOT_FOUND, "not_found")
        return found

    @router.post("/upload", tags=["admin"])
    async def upload(body: UploadIn, key: ApiKey = Depends(admin)) -> dict[str, Any]:
        """Save the files in the index's uploads folder (same name = replaced) and ingest them (admin keys)."""
        decoded = []
        for file in body.files:
            try:
                decoded.append((safe_upload_name(file.name), base64.b64decode(file.content_base64, validate=True)))
            except binascii.Error:
                raise error(422, f"files[{file.name!r}].content_base64 is not base64", "invalid_request_error") from None
        folder = uploads_dir()
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, content in decoded:
            (folder / name).write_bytes(content)
            paths.append(str(folder / name))
        return await ingest(paths, body.groups, body.tags)

    return router
