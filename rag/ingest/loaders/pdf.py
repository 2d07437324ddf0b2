"""PDF: text per page with pypdf, page numbers kept."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import LoadError
from rag.ingest.loaders.builder import TextBuilder
from rag.types import LoadedSource

if TYPE_CHECKING:
    from pypdf import PdfReader


def load_pdf(path: Path, doc_id: str) -> LoadedSource:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every recoverable quirk
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF: it needs a password; save an unencrypted copy and ingest that")
        builder = TextBuilder()
        for number, page in enumerate(reader.pages, start=1):
            builder.start_page(number)
            builder.add_block(_clean(page.extract_text() or ""))
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: it needs a password; save an unencrypted copy and ingest that") from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError) as exc:
        raise LoadError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    document = builder.build(doc_id, title=_title(reader))
    if not document.text.strip():
        raise LoadError("the PDF has no extractable text (scanned images?); run OCR on it first")
    return LoadedSource("pdf", [document])


def _clean(text: str) -> str:
    """Drop trailing spaces pypdf leaves at line ends; keep line breaks (they carry layout)."""
    return "\n".join(line.rstrip() for line in text.splitlines())


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return str(meta.title) if meta and meta.title else ""
    except Exception:  # metadata is optional and often malformed; the text matters
        return ""
