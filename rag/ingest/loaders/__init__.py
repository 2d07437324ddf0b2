"""Loaders turn one file into extracted text plus structure (pages, heading sections); chosen by file type.

Built-ins read pdf, docx, html, markdown, text and jsonl. `ingest.loaders` maps a file type to another loader, or
adds a type (with the file name endings it takes): a name in `rag.core.registry.LOADERS` (built-in, registered in
code, an entry point in the group `rag.loaders`) or a dotted path. A loader factory is called with its config
section (`LoaderBase`: `kind`, `extensions`, plug-ins' `options`) and the `ingest` section, and returns a
`Loader`. `rag.testing.LoaderContract` checks one, including the span rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rag.config import IngestConfig, LoaderBase, LoaderConfig
from rag.core.registry import LOADERS
from rag.errors import LoadError
from rag.types import LoadedSource

__all__ = ["Loader", "LoaderFactory", "build_loader", "load_file", "loader_factory"]


class Loader(Protocol):
    """One job: one file in, its documents out, with exact spans.

    Every document's `pages` and `sections` are character spans into its `text` (`text[start:end]`), within it
    and in order; chunks cut later are spans of the same text. A file the loader cannot read raises
    `rag.errors.LoadError` with a reason a user can act on; the ingest lists it and goes on with the others.
    `doc_id` is the id to give the document (the path as given); a loader that finds several documents in one
    file (JSON Lines) gives each its own id.
    """

    def load(self, path: Path, doc_id: str) -> LoadedSource: ...


LoaderFactory = Callable[[LoaderBase, IngestConfig], Loader]


def loader_factory(file_type: str, config: IngestConfig) -> tuple[LoaderFactory, LoaderBase]:
    """The factory of the loader for `file_type` (the one `ingest.loaders` names, else the built-in of that name)
    and the config section it is called with."""
    section = config.loaders.get(file_type)
    if section is None:
        if file_type not in LOADERS.builtins:
            raise LoadError(f"no loader for type {file_type!r}")
        section = LoaderConfig.model_validate({"kind": file_type})
    factory: LoaderFactory = LOADERS.resolve(section.kind)
    return factory, section


def build_loader(file_type: str, config: IngestConfig) -> Loader:
    """The loader for `file_type`."""
    factory, section = loader_factory(file_type, config)
    return factory(section, config)


def load_file(path: Path, file_type: str, config: IngestConfig, doc_id: str) -> LoadedSource:
    """Read one file with the loader for its type; parsers are imported only when needed."""
    return build_loader(file_type, config).load(path, doc_id)


class FileLoader:
    """A built-in loader: a function (path, doc_id) -> LoadedSource."""

    def __init__(self, read: Callable[[Path, str], LoadedSource]) -> None:
        self._read = read

    def load(self, path: Path, doc_id: str) -> LoadedSource:
        return self._read(path, doc_id)


# --- the built-in loaders' factories (named in rag.core.registry.LOADERS) -----------------------------
def pdf_loader(section: LoaderBase, ingest: IngestConfig) -> Loader:
    from rag.ingest.loaders.pdf import load_pdf

    return FileLoader(lambda path, doc_id: load_pdf(path, doc_id, ingest.limits))


def docx_loader(section: LoaderBase, ingest: IngestConfig) -> Loader:
    from rag.ingest.loaders.docx import load_docx

    return FileLoader(lambda path, doc_id: load_docx(path, doc_id, ingest.limits))


def html_loader(section: LoaderBase, ingest: IngestConfig) -> Loader:
    from rag.ingest.loaders.html import load_html

    return FileLoader(lambda path, doc_id: load_html(path, doc_id, ingest.limits))


def markdown_loader(section: LoaderBase, ingest: IngestConfig) -> Loader:
    from rag.ingest.loaders.markdown import load_markdown

    return FileLoader(load_markdown)


def text_loader(section: LoaderBase, ingest: IngestConfig) -> Loader:
    from rag.ingest.loaders.text import load_text

    return FileLoader(load_text)


def jsonl_loader(section: LoaderBase, ingest: IngestConfig) -> Loader:
    from rag.ingest.loaders.jsonl import load_jsonl

    return FileLoader(lambda path, doc_id: load_jsonl(path, ingest.jsonl))
