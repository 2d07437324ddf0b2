"""Per-file bounds (`ingest.limits`), checked before a parser is given the chance to use much time or memory.

Each check raises `LimitExceeded` (a `LoadError`) whose reason names the limit and the setting that raises it, so
the ingest lists the file under *Failed* and goes on. Wall time and memory are bounded by the worker process
(rag.ingest.worker); these checks make the common bombs fail in well under a second instead.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

from rag.config import IngestLimits
from rag.errors import LoadError
from rag.types import Chunk, Document

__all__ = ["LimitExceeded", "check_chunks", "check_html_depth", "check_pages", "check_text", "check_zip", "over"]

_MB = 1024 * 1024
_RATIO_FROM_BYTES = _MB  # small parts compress very well legitimately; the ratio is checked above this size
_XML_HEAD_BYTES = 64 * 1024  # a DTD must come before the root element: the head of a part is enough to find one


class LimitExceeded(LoadError):
    """A file is past one of the `ingest.limits` bounds."""


def over(what: str, value: str, setting: str, limit: float) -> LimitExceeded:
    """The error for one exceeded bound: what, how much, the setting and how to raise it."""
    return LimitExceeded(
        f"{what} {value}, over ingest.limits.{setting}={limit:g} (raise it with --set ingest.limits.{setting}=N)"
    )


def check_zip(path: Path, limits: IngestLimits) -> None:
    """Refuse a ZIP package (DOCX) whose parts would unpack too large, too far, or carry an XML DTD.

    The sizes are those the package declares; Python's zipfile never unpacks more than a part declares, so a
    package that lies about them fails with a CRC or size error instead of filling memory.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            total = sum(part.file_size for part in parts)
            if total > limits.max_unzipped_mb * _MB:
                raise over("the package unpacks to", f"{total / _MB:,.0f} MB", "max_unzipped_mb", limits.max_unzipped_mb)
            for part in parts:
                _check_part(archive, part, limits)
    except zipfile.BadZipFile:
        raise LoadError("corrupt ZIP/DOCX package") from None


def _check_part(archive: zipfile.ZipFile, part: zipfile.ZipInfo, limits: IngestLimits) -> None:
    if part.file_size > _RATIO_FROM_BYTES:
        ratio = part.file_size / max(part.compress_size, 1)
        if ratio > limits.max_zip_ratio:
            raise over(f"part {part.filename} is a zip bomb: it unpacks", f"{ratio:,.0f} times its packed size", "max_zip_ratio", limits.max_zip_ratio)
    if not part.filename.endswith((".xml", ".rels")):
        return
    if part.file_size > limits.max_xml_part_mb * _MB:
        raise over(f"XML part {part.filename} unpacks to", f"{part.file_size / _MB:,.0f} MB", "max_xml_part_mb", limits.max_xml_part_mb)
    with archive.open(part) as handle:
        head = handle.read(_XML_HEAD_BYTES)
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise LoadError(
            f"XML part {part.filename} declares a DTD or entities, which Office files never need (an entity bomb?): "
            "refused; entities are never expanded"
        )


def check_html_depth(data: bytes, limits: IngestLimits) -> None:
    """Refuse HTML nested deeper than `max_depth`, found by a streaming parse (no tree is built)."""
    from lxml import etree

    class DepthTarget:
        def __init__(self) -> None:
            self.depth = 0

        def start(self, tag: str, attrib: object) -> None:
            self.depth += 1
            if self.depth > limits.max_depth:
                raise over("HTML elements nested", f"more than {limits.max_depth} deep", "max_depth", limits.max_depth)

        def end(self, tag: str) -> None:
            self.depth -= 1

        def close(self) -> None:
            return None

    parser = etree.HTMLParser(target=DepthTarget(), no_network=True)
    parser.feed(data)
    parser.close()


def check_pages(pages: int, limits: IngestLimits) -> None:
    if pages > limits.max_pages:
        raise over("the PDF has", f"{pages:,} pages", "max_pages", limits.max_pages)


def check_text(documents: Iterable[Document], limits: IngestLimits, so_far: int = 0) -> int:
    """Refuse extracted text over `max_chars` in all; returns the characters counted (plus `so_far`)."""
    total = so_far + sum(len(document.text) for document in documents)
    if total > limits.max_chars:
        raise over("the extracted text has", f"{total:,} characters", "max_chars", limits.max_chars)
    return total


def check_chunks(chunks: list[Chunk], limits: IngestLimits) -> None:
    if len(chunks) > limits.max_chunks:
        raise over("the file makes", f"{len(chunks):,} chunks", "max_chunks", limits.max_chunks)
