"""DOCX: paragraphs and Word heading styles in reading order; tables as readable rows."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from rag.config import IngestLimits
from rag.errors import LoadError
from rag.ingest.limits import check_zip
from rag.ingest.loaders.builder import TextBuilder
from rag.ingest.loaders.tables import rows_to_text
from rag.types import LoadedSource

_HEADING_STYLE = re.compile(r"^(?:Heading|Überschrift|Titre)\s*(\d)$", re.IGNORECASE)


def load_docx(path: Path, doc_id: str, limits: IngestLimits | None = None) -> LoadedSource:
    """python-docx parses with lxml and `resolve_entities=False`; `check_zip` refuses bombs and DTDs first."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    check_zip(path, limits or IngestLimits())
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"corrupt or unreadable DOCX ({type(exc).__name__}: {exc})") from None
    builder = TextBuilder()
    title = document.core_properties.title or ""
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [[cell.text for cell in row.cells] for row in block.rows]
            builder.add_block(rows_to_text(rows))
            continue
        level = _heading_level(block.style.name if block.style is not None else "")
        if level is not None:
            builder.add_heading(level, block.text)
            title = title or (block.text.strip() if level == 1 else "")
        else:
            builder.add_block(block.text)
    result = builder.build(doc_id, title=title)
    if not result.text.strip():
        raise LoadError("the DOCX contains no text")
    return LoadedSource("docx", [result])


def _heading_level(style_name: str) -> int | None:
    if style_name == "Title":
        return 1
    match = _HEADING_STYLE.match(style_name.strip())
    return int(match.group(1)) if match else None
