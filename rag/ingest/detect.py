"""Decide a file's type from its content first and its extension second.

A PDF renamed to .txt is still read as a PDF; binary data named .txt is reported, not indexed as noise.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

from rag.core.file_types import EXTENSION_TYPES, FILE_TYPES, SUPPORTED_TYPES
from rag.errors import LoadError

__all__ = ["EXTENSION_TYPES", "FILE_TYPES", "SUPPORTED_HINT", "SUPPORTED_TYPES", "UnsupportedType", "detect_type"]

SUPPORTED_HINT = "supported: .pdf, .docx, .html/.htm, .md/.markdown, .txt/.text/.rst/.log/.csv, .jsonl/.ndjson"
_SNIFF_BYTES = 8192


class UnsupportedType(LoadError):
    """The file is of a kind no loader reads (an image, an archive, a spreadsheet...)."""


def detect_type(path: Path, extensions: Mapping[str, str] | None = None) -> str:
    """Return one of SUPPORTED_TYPES or raise UnsupportedType / LoadError with a reason.

    `extensions` maps file name endings to the types configured loaders add (`ingest.loaders`); they are
    looked at first, so a configured type is never sniffed as something else.
    """
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head:
        raise LoadError("empty file (0 bytes)")
    name = path.name.lower()
    for ending in sorted(extensions or {}, key=len, reverse=True):
        if name.endswith(ending):
            return (extensions or {})[ending]
    if head.lstrip()[:5] == b"%PDF-":
        return "pdf"
    extension = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(path, extension)
    binary_kind = _binary_kind(head)
    if binary_kind and extension in EXTENSION_TYPES:
        raise LoadError(f"the content is {binary_kind}, not the {extension or 'plain text'} its name suggests")
    if binary_kind:
        raise UnsupportedType(f"{binary_kind} file: unsupported type ({SUPPORTED_HINT})")
    if extension == ".pdf":
        raise LoadError("corrupt PDF: the file does not start with a PDF header")
    if extension == ".docx":
        raise LoadError("corrupt DOCX: the file is not a ZIP package")
    sniffed = head.lstrip()[:256].lower()
    if extension in ("", ".txt", ".text") and sniffed.startswith((b"<!doctype html", b"<html")):
        return "html"
    if extension in EXTENSION_TYPES:
        return EXTENSION_TYPES[extension]
    if sniffed.startswith((b"<!doctype html", b"<html")):
        return "html"
    raise UnsupportedType(f"unsupported file type {extension!r} ({SUPPORTED_HINT})")


def _zip_type(path: Path, extension: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise LoadError("corrupt ZIP/DOCX package") from None
    if "word/document.xml" in names:
        return "docx"
    if extension == ".docx":
        raise LoadError("corrupt DOCX: the package has no word/document.xml")
    if "xl/workbook.xml" in names:
        raise UnsupportedType(f"Excel workbook: unsupported type ({SUPPORTED_HINT})")
    if "ppt/presentation.xml" in names:
        raise UnsupportedType(f"PowerPoint file: unsupported type ({SUPPORTED_HINT})")
    raise UnsupportedType(f"ZIP archive: unsupported type; unpack it and ingest the folder ({SUPPORTED_HINT})")


def _binary_kind(head: bytes) -> str | None:
    """Name a recognised binary format, or say 'binary' for unrecognised bytes that are not text."""
    import filetype

    kind = filetype.guess(head)
    if kind is not None and kind.mime not in ("application/zip", "application/pdf") and not _is_plain_text(head):
        return f"{kind.mime} ({kind.extension})"
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary data"
    return None


_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")


def _is_plain_text(head: bytes) -> bool:
    """True when no byte is a control character other than whitespace.

    Some magic numbers are two printable letters (BMP is "BM"), so a text file that starts with them would be
    taken for an image; real binary headers carry control bytes (lengths, zeros) within their first bytes.
    """
    return all(byte >= 0x20 or byte in _TEXT_CONTROLS for byte in head)
