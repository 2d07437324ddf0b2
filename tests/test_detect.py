"""File type detection: content first, extension second; binary data and unknown kinds rejected with a reason."""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from rag.errors import LoadError
from rag.ingest.detect import UnsupportedType, detect_type

DATA = Path(__file__).resolve().parents[1] / "data"
HTML = b"<!DOCTYPE html>\n<html><head><title>t</title></head><body><p>Hello there</p></body></html>\n"


def png_bytes() -> bytes:
    """A real 1x1 RGB PNG."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


def zip_bytes(names: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in names.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- content wins over the name ------------------------------------------------------------
@pytest.mark.parametrize("name", ["renamed.txt", "renamed.md", "renamed", "renamed.html"])
def test_pdf_is_detected_by_content_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    shutil.copy(DATA / "security_policy.pdf", path)
    assert detect_type(path) == "pdf"


def test_pdf_header_after_leading_whitespace(tmp_path: Path) -> None:
    data = (DATA / "travel_policy.pdf").read_bytes()
    assert detect_type(write(tmp_path, "x.bin.txt", b"\r\n  " + data)) == "pdf"


@pytest.mark.parametrize("name", ["report.txt", "report"])
def test_docx_is_detected_by_content_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    shutil.copy(DATA / "support_sla.docx", path)
    assert detect_type(path) == "docx"


def test_html_without_extension_is_sniffed(tmp_path: Path) -> None:
    assert detect_type(write(tmp_path, "index", HTML)) == "html"


@pytest.mark.parametrize("name", ["page.aspx", "page.php", "page.shtml"])
def test_html_with_unknown_extension_is_sniffed(tmp_path: Path, name: str) -> None:
    assert detect_type(write(tmp_path, name, b"  \n" + HTML)) == "html"
    assert detect_type(write(tmp_path, "upper" + name, b"<HTML><BODY>Hi</BODY></HTML>")) == "html"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.md", "markdown"),
        ("a.markdown", "markdown"),
        ("A.MD", "markdown"),
        ("a.html", "html"),
        ("a.htm", "html"),
        ("a.txt", "text"),
        ("a.rst", "text"),
        ("a.log", "text"),
        ("a.csv", "text"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("README", "text"),
    ],
)
def test_text_kinds_by_extension(tmp_path: Path, name: str, expected: str) -> None:
    assert detect_type(write(tmp_path, name, b'{"_id": "1", "text": "plain words"}\n')) == expected


def test_non_utf8_and_utf16_text_are_text_not_binary(tmp_path: Path) -> None:
    assert detect_type(write(tmp_path, "a.txt", "caf\u00e9 \u201cquoted\u201d\n".encode("cp1252"))) == "text"
    assert detect_type(write(tmp_path, "b.txt", "wide text\n".encode("utf-16"))) == "text"


@pytest.mark.parametrize("text", [b"BM25 ranks documents by term frequency.\n", b"ID3 tags name the artist.\n"])
def test_text_starting_like_a_magic_number_is_text(tmp_path: Path, text: bytes) -> None:
    """filetype takes any file starting "BM" for a bitmap and "ID3" for an MP3; plain text stays text."""
    assert detect_type(write(tmp_path, "notes.txt", text)) == "text"
    assert detect_type(write(tmp_path, "notes.md", text)) == "markdown"


def test_real_bitmap_named_txt_is_still_rejected(tmp_path: Path) -> None:
    header = b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 0, 0, 0, 0)
    with pytest.raises(LoadError, match="image/bmp"):
        detect_type(write(tmp_path, "scan.txt", header + b"\x00\x00\xff\x00"))


# --- binary data and unsupported kinds -----------------------------------------------------
def test_png_named_txt_is_rejected_as_binary(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="image/png") as caught:
        detect_type(write(tmp_path, "photo.txt", png_bytes()))
    assert not isinstance(caught.value, UnsupportedType)  # the name lies: a failure, not a skip
    assert ".txt" in str(caught.value)


def test_random_binary_named_txt_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="binary") as caught:
        detect_type(write(tmp_path, "blob.txt", bytes(range(256)) * 4))
    assert not isinstance(caught.value, UnsupportedType)


@pytest.mark.parametrize("name, data", [("photo.png", png_bytes()), ("photo.xyz", png_bytes()), ("pic.jpg", JPEG)])
def test_image_with_non_text_extension_is_unsupported(tmp_path: Path, name: str, data: bytes) -> None:
    with pytest.raises(UnsupportedType, match="image/"):
        detect_type(write(tmp_path, name, data))


def test_zip_that_is_not_a_docx_is_unsupported(tmp_path: Path) -> None:
    data = zip_bytes({"notes/readme.txt": "hello", "data.csv": "a,b"})
    with pytest.raises(UnsupportedType, match="ZIP archive"):
        detect_type(write(tmp_path, "bundle.zip", data))
    with pytest.raises(LoadError, match="corrupt DOCX") as caught:  # named .docx but without word/document.xml
        detect_type(write(tmp_path, "fake.docx", data))
    assert not isinstance(caught.value, UnsupportedType)  # a broken .docx fails; it is not silently skipped


def test_office_packages_other_than_docx_are_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedType, match="Excel"):
        detect_type(write(tmp_path, "book.xlsx", zip_bytes({"xl/workbook.xml": "<workbook/>"})))
    with pytest.raises(UnsupportedType, match="PowerPoint"):
        detect_type(write(tmp_path, "deck.pptx", zip_bytes({"ppt/presentation.xml": "<p/>"})))


def test_broken_zip_is_a_load_error(tmp_path: Path) -> None:
    data = (DATA / "price_list_2024.docx").read_bytes()[:200]
    with pytest.raises(LoadError, match="corrupt") as caught:
        detect_type(write(tmp_path, "cut.docx", data))
    assert not isinstance(caught.value, UnsupportedType)


def test_unknown_text_extension_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedType, match=r"\.xyz"):
        detect_type(write(tmp_path, "notes.xyz", b"just some words\n"))


# --- names that promise a format the content does not have ---------------------------------
def test_empty_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="empty") as caught:
        detect_type(write(tmp_path, "empty.md", b""))
    assert not isinstance(caught.value, UnsupportedType)


def test_pdf_name_without_pdf_content_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="corrupt PDF") as caught:
        detect_type(write(tmp_path, "report.pdf", b"this is not a pdf\n"))
    assert not isinstance(caught.value, UnsupportedType)


def test_docx_name_without_zip_content_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="corrupt DOCX") as caught:
        detect_type(write(tmp_path, "report.docx", b"plain words, no zip\n"))
    assert not isinstance(caught.value, UnsupportedType)


@pytest.mark.parametrize("path", sorted(p for p in DATA.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_sample_files_are_detected_as_their_extension_says(path: Path) -> None:
    expected = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".md": "markdown", ".txt": "text"}[path.suffix]
    assert detect_type(path) == expected
