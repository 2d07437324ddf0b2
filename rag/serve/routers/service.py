"""Routes about the service itself, answered without a key."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the server is up. Needs no key and says nothing about the documents."""
    return {"status": "ok"}
