"""Loaders turn one file into extracted text plus structure (pages, heading sections)."""

from __future__ import annotations

from pathlib import Path

from rag.config import IngestConfig
from rag.errors import LoadError
from rag.types import LoadedSource


def load_file(path: Path, file_type: str, config: IngestConfig, doc_id: str) -> LoadedSource:
    """Dispatch to the loader for `file_type`; imports each parser only when it is needed."""
    if file_type == "pdf":
        from rag.ingest.loaders.pdf import load_pdf

        return load_pdf(path, doc_id)
    if file_type == "docx":
        from rag.ingest.loaders.docx import load_docx

        return load_docx(path, doc_id)
    if file_type == "html":
        from rag.ingest.loaders.html import load_html

        return load_html(path, doc_id)
    if file_type == "markdown":
        from rag.ingest.loaders.markdown import load_markdown

        return load_markdown(path, doc_id)
    if file_type == "text":
        from rag.ingest.loaders.text import load_text

        return load_text(path, doc_id)
    if file_type == "jsonl":
        from rag.ingest.loaders.jsonl import load_jsonl

        return load_jsonl(path, config.jsonl)
    raise LoadError(f"no loader for type {file_type!r}")
