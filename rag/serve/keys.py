"""API keys for `rag serve`: the key store of an index, whichever backend keeps it."""

from __future__ import annotations

import os

from rag.index.backends import open_backend
from rag.index.contracts import ApiKey, KeyStore

__all__ = ["ApiKey", "KeyStore", "open_key_store"]


def open_key_store(location: str | os.PathLike[str]) -> KeyStore:
    """The API keys of the index at `location` (a folder or a URL); RagError when there is no index there."""
    return open_backend(location).key_store()
