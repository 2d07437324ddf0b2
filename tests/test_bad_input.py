"""End to end through `Ingestor`: bad files are reported with a reason and never stop or damage the rest.

Two ingests in all (each loads the embedding model): the first over a folder of good and bad files,
the second after two previously good files were replaced by corrupt bytes.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.ingest.report import IngestReport

REPO = Path(__file__).resolve().parents[1]
LIMIT_MB = 0.001  # 1048 bytes: every file here is smaller except big.txt
LIMIT_BYTES = int(LIMIT_MB * 1024 * 1024)

GOOD_MD = "# Quokka Policy\n\nThe quokka budget is 42 dollars per quarter.\n\n## Exceptions\n\nNone apply.\n"
GOOD_TXT = "Plain notes: the walrus review happens every March.\n"
# cp1252 bytes that are not UTF-8; these characters decode the same in every Western codepage.
LATIN_TXT = "Caf\u00e9 M\u00fcller \u201cquoted\u201d \u2014 costs \u20ac12. The \u00f6 and \u00df survive.\n" * 4
GOOD_PDF_TEXT = "The narwhal quota is 77 units per quarter."

EXPECTED_FAILED = {
    "corrupt.pdf": r"corrupt or unreadable PDF",
    "encrypted.pdf": r"encrypted PDF",
    "empty.txt": r"empty file",
    "binary.txt": r"binary",
    "big.txt": r"max_file_mb",
}
GOOD_FILES = {"good.md", "good.pdf", "notes.txt", "latin.txt"}


def png_bytes() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def small_pdf() -> bytes:
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 is needed to build a small test PDF")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, GOOD_PDF_TEXT)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def by_name(problems) -> dict[str, str]:
    return {Path(p.path).name: p.reason for p in problems}


@dataclass
class Run:
    report: IngestReport
    sources: dict[str, object]  # file name -> SourceRecord
    chunk_ids: dict[str, set[str]]  # file name -> chunk ids in the manifest
    all_chunk_ids: set[str]
    vector_ids: set[str]


def ingest(index_dir: Path, folder: Path) -> Run:
    config = load_config(None, [f"ingest.max_file_mb={LIMIT_MB}"])
    with Index.open(index_dir, config, writable=True) as index:
        report = Ingestor(index).ingest([str(folder)])
        sources = {Path(r.path).name: r for r in index.manifest.sources()}
        chunk_ids = {name: index.manifest.chunk_ids_of(r.path) for name, r in sources.items()}
        return Run(report, sources, chunk_ids, index.manifest.all_chunk_ids(), index.vectors.ids())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run, Path]:
    root = tmp_path_factory.mktemp("bad_input")
    docs = root / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD_MD, encoding="utf-8")
    (docs / "notes.txt").write_text(GOOD_TXT, encoding="utf-8")
    (docs / "good.pdf").write_bytes(small_pdf())
    (docs / "latin.txt").write_bytes(LATIN_TXT.encode("cp1252"))
    real_pdf = (REPO / "data" / "handbook.pdf").read_bytes()
    (docs / "corrupt.pdf").write_bytes(real_pdf[:900])  # the header survives, the rest is cut off
    (docs / "encrypted.pdf").write_bytes(encrypted_pdf())
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 3)
    (docs / "big.txt").write_text("lorem ipsum " * 430, encoding="utf-8")  # ~5 KB
    (docs / "image.png").write_bytes(png_bytes())
    for path in docs.iterdir():
        if path.name != "big.txt":
            assert path.stat().st_size <= LIMIT_BYTES, f"{path.name} must stay under the size limit"
    assert (docs / "big.txt").stat().st_size > 4 * LIMIT_BYTES

    first = ingest(root / "index", docs)

    # Replace two previously good files with corrupt bytes; their indexed versions must survive.
    good_pdf = (docs / "good.pdf").read_bytes()
    (docs / "good.pdf").write_bytes(good_pdf[: len(good_pdf) // 2])
    (docs / "good.md").write_bytes(b"\x00\x01\x02 not text any more \x00" * 8)
    second = ingest(root / "index", docs)
    return first, second, docs


def test_each_bad_file_is_reported_by_name_with_its_reason(runs) -> None:
    first, _, docs = runs
    failed = by_name(first.report.failed)
    assert set(failed) == set(EXPECTED_FAILED)
    for name, pattern in EXPECTED_FAILED.items():
        assert re.search(pattern, failed[name]), f"{name}: unclear reason {failed[name]!r}"
    for problem in first.report.failed:
        assert Path(problem.path).parent == docs  # the report names the file itself


def test_unsupported_type_is_skipped_not_failed(runs) -> None:
    first, _, _ = runs
    skipped = by_name(first.report.skipped)
    assert set(skipped) == {"image.png"}
    assert "image/png" in skipped["image.png"] and "unsupported" in skipped["image.png"]


def test_non_utf8_text_is_ingested_with_a_note(runs) -> None:
    first, _, _ = runs
    notes = by_name(first.report.notes)
    assert "latin.txt" in notes and notes["latin.txt"].startswith("not UTF-8")
    assert "latin.txt" not in by_name(first.report.failed)
    assert first.sources["latin.txt"].file_type == "text"


def test_good_files_are_in_the_manifest_and_the_vector_store(runs) -> None:
    first, _, _ = runs
    assert set(first.sources) == GOOD_FILES
    assert first.report.new == len(GOOD_FILES)
    assert first.sources["good.pdf"].file_type == "pdf" and first.sources["good.pdf"].pages == 1
    for name in GOOD_FILES:
        assert first.chunk_ids[name], f"{name} has no chunks"
        assert first.chunk_ids[name] <= first.vector_ids
    assert first.vector_ids == first.all_chunk_ids
    assert first.report.chunks_added == len(first.all_chunk_ids)


def test_a_run_with_failures_exits_1(runs) -> None:
    first, second, _ = runs
    assert first.report.exit_code == 1
    assert second.report.exit_code == 1


def test_a_good_file_replaced_by_corrupt_bytes_keeps_its_indexed_version(runs) -> None:
    first, second, _ = runs
    failed = by_name(second.report.failed)
    assert re.search(r"corrupt or unreadable PDF", failed["good.pdf"])
    assert re.search(r"binary", failed["good.md"])
    assert set(second.sources) == GOOD_FILES
    for name in GOOD_FILES:
        assert second.sources[name].content_hash == first.sources[name].content_hash
        assert second.chunk_ids[name] == first.chunk_ids[name]
    assert second.vector_ids == first.vector_ids
    assert second.report.chunks_removed == 0 and second.report.removed == 0
    assert second.report.chunks_added == 0
    # the files that were bad before are still reported, and still not indexed
    assert set(EXPECTED_FAILED) <= set(failed)
    assert second.report.unchanged == len(GOOD_FILES) - 2


def test_over_limit_reason_states_a_size_above_the_limit(runs) -> None:
    first, _, docs = runs
    reason = by_name(first.report.failed)["big.txt"]
    match = re.search(r"file is ([\d,.]+) (MiB|KiB|MB|KB|bytes)", reason)
    assert match, reason
    scale = {"MiB": 2**20, "MB": 2**20, "KiB": 1024, "KB": 1024, "bytes": 1}[match.group(2)]
    assert float(match.group(1).replace(",", "")) * scale > LIMIT_BYTES
