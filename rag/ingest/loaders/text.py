"""Plain text, decoded with charset detection so non-UTF-8 files read correctly."""

from __future__ import annotations

from pathlib import Path

from rag.errors import LoadError
from rag.types import Document, LoadedSource

_WESTERN_CHAOS_MARGIN = 0.2


def decode_text(raw: bytes) -> tuple[str, list[str]]:
    """Decode bytes as UTF-8, else as the detected charset; raise LoadError for binary data."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return _normalise(raw.decode("utf-8")), []
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None or "\x00" in str(best):
        raise LoadError("binary data, not text: the content is not in any text encoding")
    if best.encoding != "cp1252":
        # Western European bytes often score the same under cp1250/cp1257 as under cp1252; the detector
        # then picks the wrong one and turns "crème" into "crčme". Prefer cp1252 when it reads as cleanly.
        western = from_bytes(raw, cp_isolation=["cp1252"]).best()
        if western is not None and western.chaos <= best.chaos + _WESTERN_CHAOS_MARGIN:
            best = western
    return _normalise(str(best)), [f"not UTF-8: decoded as {best.encoding}"]


def _normalise(text: str) -> str:
    if "\x00" in text:
        raise LoadError("binary data, not text: the file contains NUL bytes")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_text(path: Path, doc_id: str) -> LoadedSource:
    """The document text is the file's own text (newlines normalised), so spans map onto the file."""
    text, notes = decode_text(path.read_bytes())
    if not text.strip():
        raise LoadError("the file contains only whitespace")
    return LoadedSource("text", [Document(doc_id=doc_id, text=text)], notes)
