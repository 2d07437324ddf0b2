"""PDF: text per page with pypdf, page numbers kept, running page headers and footers left out.

A line that starts (or ends) most pages, such as "Company - Internal" or "Handbook v7.2 - Page 3 of 5", is page
furniture: kept, it lands in every chunk of its page, dilutes the embeddings and gets quoted in answers. It is
dropped before the text is assembled, so the document text never contains it and every chunk and citation span
stays an exact slice of that text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import IngestLimits
from rag.errors import LoadError
from rag.ingest.limits import LimitExceeded, check_pages, over
from rag.ingest.loaders.builder import TextBuilder
from rag.ingest.loaders.running_lines import strip_running_lines
from rag.types import LoadedSource

if TYPE_CHECKING:
    from pypdf import PdfReader


def load_pdf(path: Path, doc_id: str, limits: IngestLimits | None = None) -> LoadedSource:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every recoverable quirk
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF: it needs a password; save an unencrypted copy and ingest that")
        pages = _extract_pages(reader, limits or IngestLimits())
    except LoadError:
        raise
    except LimitReachedError as exc:  # pypdf's own bound on a decompressed stream (a flate bomb)
        raise LimitExceeded(f"a PDF stream is a decompression bomb: {exc}") from None
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: it needs a password; save an unencrypted copy and ingest that") from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError, RecursionError) as exc:
        raise LoadError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    pages, removed = strip_running_lines(pages)
    builder = TextBuilder()
    for number, text in enumerate(pages, start=1):
        builder.start_page(number)
        builder.add_block(text)
    document = builder.build(doc_id, title=_title(reader))
    if not document.text.strip():
        raise LoadError("the PDF has no extractable text (scanned images?); run OCR on it first")
    left_out = "; ".join(f"{kind} {line!r} ({count} pages)" for kind, line, count in removed)
    return LoadedSource("pdf", [document], [f"running page lines left out of the text: {left_out}"] if removed else [])


def _extract_pages(reader: PdfReader, limits: IngestLimits) -> list[str]:
    """Each page's text, the page count and the text so far checked against the limits as it goes."""
    check_pages(len(reader.pages), limits)
    pages, total = [], 0
    for page in reader.pages:
        text = _clean(page.extract_text() or "")
        total += len(text)
        if total > limits.max_chars:
            raise over("the extracted text has", f"over {limits.max_chars:,} characters", "max_chars", limits.max_chars)
        pages.append(text)
    return pages


def _clean(text: str) -> str:
    """Drop trailing spaces pypdf leaves at line ends; keep line breaks (they carry layout)."""
    return "\n".join(line.rstrip() for line in text.splitlines())


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return str(meta.title) if meta and meta.title else ""
    except Exception:  # metadata is optional and often malformed; the text matters
        return ""
