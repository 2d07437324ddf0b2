#!/usr/bin/env python3
"""Build the PDF and DOCX files of the sample corpus in data/.

The sources are small Markdown-like text files next to this script
(headings "#", "##", "###", paragraphs, "- " bullet lists and "|" pipe
tables). Each one is rendered either to a PDF (fpdf2) or to a DOCX
(python-docx). Output is deterministic: running the script twice gives
byte-identical files.

Usage, from the repository root:

    .venv/bin/python eval/sample_corpus_src/build_sample_docs.py
"""

from __future__ import annotations

import io
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from docx import Document
from docx.shared import Pt
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

SRC_DIR = Path(__file__).resolve().parent
REPO_ROOT = SRC_DIR.parent.parent
DATA_DIR = REPO_ROOT / "data"

# Fixed timestamp used for every piece of metadata that would otherwise vary.
FIXED_DATE = datetime(2024, 6, 28, 9, 0, 0, tzinfo=timezone.utc)
ZIP_DATE = (2024, 6, 28, 9, 0, 0)
AUTHOR = "Lumen Harbor Software"


@dataclass(frozen=True)
class Doc:
    source: str  # file name in SRC_DIR
    output: str  # path relative to DATA_DIR
    footer: str  # short title used in page footers (PDF only)


PDF_DOCS = [
    Doc("handbook.md", "handbook.pdf", "Lumen Harbor Employee Handbook v7.2"),
    Doc("travel_policy.md", "travel_policy.pdf", "FIN-004 Business Travel Policy v3.1"),
    Doc("security_policy.md", "security_policy.pdf", "SEC-001 Information Security Policy v5.0"),
]
DOCX_DOCS = [
    Doc("expense_policy.md", "expense_policy.docx", ""),
    Doc("price_list.md", "price_list_2024.docx", ""),
    Doc("support_sla.md", "support_sla.docx", ""),
]


# --------------------------------------------------------------------------
# Parsing the Markdown-like sources
# --------------------------------------------------------------------------

# Blocks: ("heading", level, text), ("para", text), ("bullets", [items]),
#         ("table", [header_cells], [[row cells], ...])


def parse(text: str) -> list[tuple]:
    blocks: list[tuple] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            blocks.append(("heading", level, line[level:].strip()))
            i += 1
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(lines[i][2:].strip())
                i += 1
            blocks.append(("bullets", items))
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            blocks.append(("table", rows[0], rows[1:]))
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "- ", "|")):
                para.append(lines[i].strip())
                i += 1
            blocks.append(("para", " ".join(para)))
    return blocks


# --------------------------------------------------------------------------
# PDF rendering (fpdf2, core Helvetica font: latin-1 only, sources are ASCII)
# --------------------------------------------------------------------------


class HandbookPDF(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text

    def header(self):
        if self.page_no() > 1:
            self.set_font("Helvetica", "I", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 6, "Lumen Harbor Software - Internal", align="R",
                      new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(2)
            self.set_text_color(0, 0, 0)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, f"{self.footer_text} - Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render_pdf(blocks: list[tuple], doc: Doc, out: Path) -> None:
    pdf = HandbookPDF(doc.footer)
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_author(AUTHOR)
    pdf.set_creator("eval/sample_corpus_src/build_sample_docs.py")
    pdf.set_producer("fpdf2")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    title = next(b[2] for b in blocks if b[0] == "heading")
    pdf.set_title(title)
    body_w = pdf.w - pdf.l_margin - pdf.r_margin

    for block in blocks:
        kind = block[0]
        if kind == "heading":
            level, text = block[1], block[2]
            size = {1: 18, 2: 14, 3: 12}.get(level, 11)
            pdf.ln({1: 0, 2: 4, 3: 2}.get(level, 2))
            # keep a heading together with at least a few lines of following text
            if pdf.get_y() > pdf.h - 45:
                pdf.add_page()
            pdf.set_font("Helvetica", "B", size)
            pdf.multi_cell(body_w, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        elif kind == "para":
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(body_w, 5.5, block[1], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2.5)
        elif kind == "bullets":
            pdf.set_font("Helvetica", "", 11)
            for item in block[1]:
                pdf.set_x(pdf.l_margin + 3)
                pdf.cell(5, 5.5, "-")
                pdf.multi_cell(body_w - 8, 5.5, item, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(1)
            pdf.ln(1.5)
        elif kind == "table":
            header, rows = block[1], block[2]
            pdf.set_font("Helvetica", "", 10)
            with pdf.table(line_height=5.5, text_align="LEFT",
                           headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 238)),
                           first_row_as_headings=True) as table:
                for cells in [header] + rows:
                    row = table.row()
                    for c in cells:
                        row.cell(c)
            pdf.ln(3)
    pdf.output(str(out))


# --------------------------------------------------------------------------
# DOCX rendering (python-docx, real Word heading styles and tables)
# --------------------------------------------------------------------------


def render_docx(blocks: list[tuple], out: Path) -> None:
    document = Document()
    normal = document.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(11)

    title = next(b[2] for b in blocks if b[0] == "heading")
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            # "#" -> Heading 1, "##" -> Heading 2, "###" -> Heading 3
            document.add_heading(block[2], level=min(block[1], 3))
        elif kind == "para":
            document.add_paragraph(block[1])
        elif kind == "bullets":
            for item in block[1]:
                document.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            header, rows = block[1], block[2]
            table = document.add_table(rows=1 + len(rows), cols=len(header))
            table.style = "Table Grid"
            for r, cells in enumerate([header] + rows):
                for c, text in enumerate(cells):
                    cell = table.cell(r, c)
                    cell.text = text
                    if r == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            document.add_paragraph()

    props = document.core_properties
    props.title = title
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.comments = "Fictional sample document generated by build_sample_docs.py"
    props.created = FIXED_DATE.replace(tzinfo=None)
    props.modified = FIXED_DATE.replace(tzinfo=None)
    props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1

    # python-docx writes zip members with the current time; rewrite the
    # archive with a fixed timestamp so the output is byte-identical.
    buf = io.BytesIO()
    document.save(buf)
    buf.seek(0)
    fixed = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    out.write_bytes(fixed.getvalue())


# --------------------------------------------------------------------------


def load_source(name: str) -> str:
    text = (SRC_DIR / name).read_text(encoding="utf-8")
    bad = sorted({ch for ch in text if ord(ch) > 126})
    if bad:
        raise SystemExit(f"{name}: non-ASCII characters not allowed in sources: {bad!r}")
    return text


def main() -> int:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for doc in PDF_DOCS:
        out = DATA_DIR / doc.output
        render_pdf(parse(load_source(doc.source)), doc, out)
        print(f"wrote {out.relative_to(REPO_ROOT)} ({out.stat().st_size} bytes)")
    for doc in DOCX_DOCS:
        out = DATA_DIR / doc.output
        render_docx(parse(load_source(doc.source)), out)
        print(f"wrote {out.relative_to(REPO_ROOT)} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
