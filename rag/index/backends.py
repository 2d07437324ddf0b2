"""One resolver from an index location to its backend: a folder path, or a URL whose scheme names a backend.

`--index .rag/demo` is a folder (`FolderBackend`); `--index postgresql://user@host/db` is whatever backend is
registered under `postgresql` in `rag.core.registry.INDEX_BACKENDS` (built in, from an entry point in the group
`rag.index_backends`, or registered in code). A backend class is called with the location string.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rag.core.registry import INDEX_BACKENDS
from rag.errors import RagError
from rag.index.contracts import IndexBackend
from rag.index.folder import FolderBackend

# `scheme://...`; also `scheme:/...`, which is what a URL becomes after passing through pathlib.Path
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):/(?P<slash>/?)(?P<rest>.*)$", re.DOTALL)


def index_url(location: str | os.PathLike[str]) -> str | None:
    """The location as a URL (`scheme://...`) when it is one, else None (a folder path)."""
    text = os.fspath(location)
    match = _URL.match(text)
    if match is None or len(match["scheme"]) < 2:  # "C:/..." on Windows is a drive, not a scheme
        return None
    return f"{match['scheme']}://{match['rest']}"


def masked(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def work_folder(location: str | os.PathLike[str]) -> Path:
    """A folder on this machine for files kept beside an index (judge caches, uploads): the index folder itself,
    or `.rag/<scheme>-<digest>` under the working directory for an index at a URL."""
    url = index_url(location)
    if url is None:
        return Path(location)
    digest = hashlib.blake2b(masked(url).encode(), digest_size=6).hexdigest()
    return Path(".rag") / f"{url.split(':', 1)[0].lower()}-{digest}"


def open_backend(location: str | os.PathLike[str]) -> IndexBackend:
    """The backend for an index location. Cheap: nothing is opened until asked for."""
    url = index_url(location)
    if url is None:
        return FolderBackend(Path(location))
    scheme = url.split(":", 1)[0].lower()
    if not INDEX_BACKENDS.knows(scheme):
        raise RagError(
            f"no index backend handles {scheme}:// locations ({masked(url)})",
            f"give a folder path, or install the backend for {scheme} (it registers under the entry-point group "
            f"{INDEX_BACKENDS.group})",
        )
    backend: IndexBackend = INDEX_BACKENDS.resolve(scheme)(url)
    return backend
