"""Makes a folder of hostile files at test time (no binary blobs in the repo), and says why each must fail.

`make_hostile_folder(folder)` writes the files and returns `HOSTILE`: name -> a fragment the ingest's reason
for that file must contain ("" for files that must be ingested). Files that need a live process (one that changes
while it is read, one removed between scan and load) are made by the tests themselves.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time
import zipfile
import zlib
from pathlib import Path

ORDINARY_TEXT = "Quokkas are small marsupials that live on Rottnest Island and smile for photographs."

# file name -> a fragment of the reason it must be reported with ("" = ingested and searchable)
HOSTILE: dict[str, str] = {
    "ordinary.md": "",
    "a file with spaces.md": "",
    "naïve 文档 שלום.md": "",
    "new\nline.md": "",
    "bomb.docx": "max_unzipped_mb",
    "laughs.docx": "declares a DTD or entities",
    "deep.html": "max_depth",
    "loop.pdf": "PDF",  # a page tree that contains itself: corrupt or unreadable PDF
    "flate-bomb.pdf": "decompression bomb",
    "truncated.docx": "corrupt",
    "broken.jsonl": "record(s) skipped",  # a note: the good record is ingested, the broken ones listed
    "loop": "a link to a folder: not followed",
    "fifo": "FIFO",
}


def make_hostile_folder(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ordinary.md", "a file with spaces.md", "naïve 文档 שלום.md", "new\nline.md"):
        (folder / name).write_text(f"# {name.splitlines()[0]}\n\n{ORDINARY_TEXT}\n", encoding="utf-8")
    (folder / "bomb.docx").write_bytes(docx_bomb(800 * 1024 * 1024))
    (folder / "laughs.docx").write_bytes(docx_with_document_xml(billion_laughs_xml()))
    (folder / "deep.html").write_bytes(b"<html><body>" + b"<div>" * 200_000 + b"deep" + b"</div>" * 200_000 + b"</body></html>")
    (folder / "loop.pdf").write_bytes(self_referencing_pdf())
    (folder / "flate-bomb.pdf").write_bytes(flate_bomb_pdf(200 * 1024 * 1024))
    (folder / "truncated.docx").write_bytes(ordinary_docx()[:1500])
    (folder / "broken.jsonl").write_text(broken_jsonl(), encoding="utf-8")
    os.symlink("..", folder / "loop")
    os.mkfifo(folder / "fifo")
    return dict(HOSTILE)


def ordinary_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Wombats", level=1)
    document.add_paragraph("Wombats dig burrows with their strong claws.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_with_document_xml(xml: bytes) -> bytes:
    """An ordinary DOCX package whose word/document.xml is `xml`."""
    source = zipfile.ZipFile(io.BytesIO(ordinary_docx()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for part in source.infolist():
            target.writestr(part.filename, xml if part.filename == "word/document.xml" else source.read(part))
    return buffer.getvalue()


def docx_bomb(unpacked_bytes: int) -> bytes:
    """A DOCX of about 2 MB whose word/document.xml inflates to `unpacked_bytes` of paragraphs (written
    streaming: the test never holds the inflated text)."""
    source = zipfile.ZipFile(io.BytesIO(ordinary_docx()))
    paragraph = b"<w:p><w:r><w:t>" + b"A" * 900 + b"</w:t></w:r></w:p>"
    block = paragraph * 1000
    head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for part in source.infolist():
            if part.filename != "word/document.xml":
                target.writestr(part.filename, source.read(part))
        with target.open("word/document.xml", "w", force_zip64=True) as stream:
            stream.write(head)
            for _ in range(unpacked_bytes // len(block)):
                stream.write(block)
            stream.write(b"</w:body></w:document>")
    return buffer.getvalue()


def billion_laughs_xml() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        '<?xml version="1.0"?><!DOCTYPE w:document [' + "".join(entities) + "]>"
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        "<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    ).encode()


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF with these objects (numbered from 1, object 1 the catalog) and a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def self_referencing_pdf() -> bytes:
    """A page tree whose only kid is the tree itself."""
    return _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"])


def flate_bomb_pdf(unpacked_bytes: int) -> bytes:
    """One page whose content stream inflates to `unpacked_bytes` of text-showing operators."""
    block = b"BT /F1 12 Tf 72 712 Td (bomb) Tj ET\n" * 30_000
    compressor = zlib.compressobj(9)
    stream = b"".join(compressor.compress(block) for _ in range(unpacked_bytes // len(block))) + compressor.flush()
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        ]
    )


def broken_jsonl() -> str:
    lines = [
        json.dumps({"_id": "good", "text": "Platypuses lay eggs and hunt with electroreception."}),
        json.dumps({"_id": "surrogate", "text": "Echidnas \ud800 are spiny anteaters."}),  # a lone surrogate
        '{"_id": "cut", "text": "unterminated',
        "[1, 2, 3]",
        json.dumps({"_id": "binary", "text": 42}),
        "not json at all",
    ]
    return "\n".join(lines) + "\n"


def run_measured(command: list[str], env: dict[str, str], cwd: Path, during: threading.Event | None = None) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """Run `command`; return its result, the peak resident memory of its whole process tree (sampled every 20 ms,
    summed over the processes) and the wall time."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    stdout, stderr = process.communicate()
    if during is not None:
        during.set()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), peak, time.perf_counter() - started
