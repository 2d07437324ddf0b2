"""Loaders on the real sample corpus and on small files built here, plus the chunk span invariant.

Every expectation is derived from the input: the sample PDFs' "Page N of M" footers, the Markdown
sources the sample DOCX files were generated from, the HTML markup itself, or text put into a file here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.config import ChunkingConfig, IngestConfig, JsonlConfig
from rag.errors import LoadError
from rag.ingest.detect import detect_type
from rag.ingest.loaders import load_file
from rag.types import Chunk, Document, LoadedSource

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SAMPLE_SRC = REPO / "eval" / "sample_corpus_src"
GOLD = REPO / "eval" / "gold" / "sample.jsonl"
SCIFACT_CORPUS = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"

SAMPLE_FILES = sorted(p for p in DATA.rglob("*") if p.is_file())
EXPECTED_TYPE = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".md": "markdown", ".txt": "text"}
# The DOCX samples are generated from these Markdown sources (eval/sample_corpus_src/README.md).
DOCX_SOURCES = {
    "expense_policy.docx": "expense_policy.md",
    "price_list_2024.docx": "price_list.md",
    "support_sla.docx": "support_sla.md",
}


# --- helpers -------------------------------------------------------------------------------
def load(path: Path, config: IngestConfig | None = None) -> LoadedSource:
    return load_file(path, detect_type(path), config or IngestConfig(), doc_id=str(path))


def load_one(path: Path, config: IngestConfig | None = None) -> Document:
    loaded = load(path, config)
    assert len(loaded.documents) == 1
    return loaded.documents[0]


_CHUNKERS: dict[str, object] = {}


def chunk(document: Document, file_type: str) -> list[Chunk]:
    from rag.ingest.chunking import Chunker

    if "c" not in _CHUNKERS:
        _CHUNKERS["c"] = Chunker(ChunkingConfig(size=64, overlap=8), "fp")
    return _CHUNKERS["c"].chunk(document, "source", file_type)  # type: ignore[attr-defined]


def assert_chunk_invariants(document: Document, chunks: list[Chunk]) -> None:
    """Exact spans, the page and heading path of the place a chunk sits, and full coverage."""
    text = document.text
    assert chunks, f"{document.doc_id}: no chunks"
    covered = bytearray(len(text))
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text, f"{document.doc_id}: span {c.start}:{c.end} != chunk text"
        assert c.doc_id == document.doc_id
        if document.pages:
            holding = [p for p in document.pages if p.start <= c.start and c.end <= p.end]
            assert len(holding) == 1, f"chunk {c.start}:{c.end} is not inside exactly one page"
            assert c.page == holding[0].number
        else:
            assert c.page is None
        if document.sections:
            # A chunk lies in one section, except that a section holding only its heading is joined to the
            # next one: then the chunk starts at that heading and ends inside the next section.
            holding_sections = [s for s in document.sections if s.start <= c.start and c.end <= s.end]
            if not holding_sections:
                starts_at = [s for s in document.sections if s.start == c.start]
                bare = starts_at and " ".join(
                    text[starts_at[0].start : starts_at[0].end].strip().lstrip("#").split()
                ) == starts_at[0].heading_path[-1]
                holding_sections = [s for s in document.sections if s.start < c.end <= s.end] if bare else []
            assert holding_sections, f"chunk {c.start}:{c.end} {c.text[:40]!r} crosses a section boundary"
            assert c.heading_path == holding_sections[0].heading_path
        else:
            assert c.heading_path == ()
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"{document.doc_id}: text not in any chunk near {text[missing[0]:missing[0] + 40]!r}"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def expected_heading_paths(headings: list[tuple[int, str]]) -> list[tuple[str, ...]]:
    """The heading path of each heading given (level, title) in document order."""
    stack: list[tuple[int, str]] = []
    paths = []
    for level, title in headings:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        paths.append(tuple(t for _, t in stack))
    return paths


def markdown_headings(source: str) -> list[tuple[int, str]]:
    """ATX headings outside fenced code (the sample sources use nothing fancier)."""
    headings = []
    fence = None
    for line in source.splitlines():
        stripped = line.strip()
        marker = re.match(r"^(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0]
            elif stripped[0] == fence:
                fence = None
            continue
        if fence is None:
            match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if match:
                headings.append((len(match.group(1)), match.group(2)))
    return headings


def markdown_tables(source: str) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in source.splitlines() + [""]:
        if line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def section_of(document: Document, needle: str) -> tuple[str, ...]:
    index = document.text.index(needle)
    found = [s for s in document.sections if s.start <= index and index + len(needle) <= s.end]
    assert len(found) == 1, f"{needle!r} is in {len(found)} sections"
    return found[0].heading_path


# --- the real sample corpus ----------------------------------------------------------------
def test_sample_corpus_has_every_file_loader_type() -> None:
    assert {detect_type(p) for p in SAMPLE_FILES} == {"pdf", "docx", "html", "markdown", "text"}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.relative_to(DATA).as_posix())
def test_sample_file_loads_and_chunks_with_exact_spans(path: Path) -> None:
    file_type = detect_type(path)
    assert file_type == EXPECTED_TYPE[path.suffix]
    loaded = load_file(path, file_type, IngestConfig(), doc_id=str(path))
    assert loaded.file_type == file_type
    # the samples are clean UTF-8 / well-formed files; the PDFs' only note names their running page lines
    assert [n for n in loaded.notes if not n.startswith("running page lines left out")] == []
    (document,) = loaded.documents
    assert document.doc_id == str(path)
    assert document.text.strip()
    for span in [*document.pages, *document.sections]:
        assert 0 <= span.start < span.end <= len(document.text)
    assert_chunk_invariants(document, chunk(document, file_type))


def raw_pdf_pages(path: Path) -> list[list[str]]:
    """Each page's lines as pypdf extracts them, headers and footers included."""
    from pypdf import PdfReader

    return [[line.rstrip() for line in (page.extract_text() or "").splitlines() if line.strip()] for page in PdfReader(path).pages]


@pytest.mark.parametrize("path", [p for p in SAMPLE_FILES if p.suffix == ".pdf"], ids=lambda p: p.name)
def test_sample_pdf_pages_match_their_pages_without_running_headers_and_footers(path: Path) -> None:
    loaded = load(path)
    (document,) = loaded.documents
    raw = raw_pdf_pages(path)
    numbers = [p.number for p in document.pages]
    assert numbers == list(range(1, len(raw) + 1))
    assert len(numbers) >= 3
    for page in document.pages:
        lines = raw[page.number - 1]
        assert re.findall(r"Page (\d+) of (\d+)", lines[-1]) == [(str(page.number), str(len(raw)))]  # the page's own footer
        kept = document.text[page.start : page.end].split("\n")
        assert kept == [line for line in lines if line in kept] and kept == lines[1 if page.number > 1 else 0 : -1]
    # the footer ("... - Page N of M") and the header of pages 2+ ("Lumen Harbor Software - Internal") are left out
    assert not re.search(r"Page \d+ of \d+", document.text) and raw[1][0] not in document.text
    assert loaded.notes == [f"running page lines left out of the text: header {raw[1][0]!r} ({len(raw) - 1} pages); "
                            f"footer {raw[0][-1]!r} ({len(raw)} pages)"]
    starts = [p.start for p in document.pages]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(document.pages, document.pages[1:]))


@pytest.mark.parametrize("docx_name", sorted(DOCX_SOURCES))
def test_sample_docx_headings_follow_the_markdown_source(docx_name: str) -> None:
    source = (SAMPLE_SRC / DOCX_SOURCES[docx_name]).read_text(encoding="utf-8")
    headings = markdown_headings(source)
    document = load_one(DATA / docx_name)
    assert [s.heading_path for s in document.sections] == expected_heading_paths(headings)
    for section in document.sections:
        assert document.text[section.start :].startswith(section.heading_path[-1])


@pytest.mark.parametrize("docx_name", sorted(DOCX_SOURCES))
def test_sample_docx_tables_become_header_value_rows(docx_name: str) -> None:
    source = (SAMPLE_SRC / DOCX_SOURCES[docx_name]).read_text(encoding="utf-8")
    text = load_one(DATA / docx_name).text
    checked = 0
    for table in markdown_tables(source):
        header, body = table[0], table[1:]
        assert all(header) and len(set(header)) == len(header), "sample tables have proper headers"
        for row in body:
            line = "; ".join(f"{name}: {value}" for name, value in zip(header, row) if value)
            assert line in text.split("\n"), f"row not rendered as a line: {line!r}"
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("path", [p for p in SAMPLE_FILES if p.suffix == ".html"], ids=lambda p: p.name)
def test_sample_html_keeps_main_content_and_drops_boilerplate(path: Path) -> None:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")
    main = soup.find("main")
    assert main is not None
    document = load_one(path)
    flat = " ".join(document.text.split())
    headings = [(int(h.name[1]), h.get_text(" ", strip=True)) for h in main.find_all(["h1", "h2", "h3"])]
    assert [s.heading_path for s in document.sections] == expected_heading_paths(headings)
    for paragraph in main.find_all("p"):
        assert " ".join(paragraph.get_text(" ", strip=True).split()) in flat
    main_text = " ".join(main.get_text(" ").split())
    chrome = [t for t in soup.find_all(["nav", "header", "footer", "aside", "script", "style"]) if main not in t.parents]
    chrome += soup.select(".cookie-banner")
    assert chrome
    dropped = 0
    for element in chrome:
        for string in element.stripped_strings:
            string = " ".join(string.split())
            if len(string) >= 8 and string not in main_text:
                assert string not in flat, f"boilerplate kept: {string!r}"
                dropped += 1
    assert dropped >= 3


@pytest.mark.parametrize("path", [p for p in SAMPLE_FILES if p.suffix in (".md", ".txt")], ids=lambda p: p.name)
def test_sample_markdown_and_text_keep_the_file_text_as_document_text(path: Path) -> None:
    document = load_one(path)
    assert document.text == path.read_text(encoding="utf-8").replace("\r\n", "\n")
    if path.suffix == ".md":
        headings = markdown_headings(document.text)
        assert [s.heading_path for s in document.sections if s.heading_path] == expected_heading_paths(headings)
        for section in document.sections:
            if section.heading_path:
                assert document.text[section.start :].lstrip("#").strip().startswith(section.heading_path[-1])
    else:
        assert document.sections == [] and document.pages == []


def _gold_rows() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_gold_answer_is_in_the_loaded_text_of_one_of_its_sources() -> None:
    texts: dict[str, str] = {}
    checked = 0
    for row in _gold_rows():
        for source in row["sources"]:
            if source not in texts:
                loaded = load(REPO / source)
                texts[source] = "\n".join(d.text for d in loaded.documents)
        for answer in row["answers"]:
            if answer in ("Yes", "No"):
                continue  # a yes/no question's verdict, not a quote (its evidence is checked by the answer tests)
            holders = [s for s in row["sources"] if answer in texts[s]]
            assert holders, f"{row['id']}: answer {answer!r} not found in {row['sources']}"
            checked += 1
    assert checked >= 50


# --- PDF built here ------------------------------------------------------------------------
PDF_PAGES = [
    "Page one talks about the aardvark budget of 11 dollars.\nA second line on page one.",
    "",  # a blank page: no text, but it still counts in the numbering
    "Page three covers the narwhal policy. The narwhal allowance is 33 dollars.",
    "Page four closes with the quokka rule: quokkas need 44 days of notice.",
]
PDF_MARKERS = {1: "aardvark budget", 3: "narwhal allowance", 4: "quokka rule"}


def make_pdf(path: Path, pages: list[str]) -> Path:
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 is needed to build test PDFs")
    pdf = fpdf.FPDF()
    pdf.set_auto_page_break(False)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        if text:
            pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def test_pdf_pages_keep_their_physical_numbers_and_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "made.pdf", PDF_PAGES)
    loaded = load(path)
    assert loaded.file_type == "pdf"
    (document,) = loaded.documents
    assert [p.number for p in document.pages] == [1, 3, 4]  # page 2 is blank, so it has no span
    for page in document.pages:
        page_text = document.text[page.start : page.end]
        assert page_text == page_text.strip(), "a page span starts and ends at the page's text"
        assert PDF_MARKERS[page.number] in page_text
        for other, marker in PDF_MARKERS.items():
            if other != page.number:
                assert marker not in page_text
    assert loaded.page_count == 3
    chunks = chunk(document, "pdf")
    assert_chunk_invariants(document, chunks)
    for number, marker in PDF_MARKERS.items():
        assert {c.page for c in chunks if marker in c.text} == {number}


def test_pdf_with_many_pages_numbers_them_one_to_n(tmp_path: Path) -> None:
    texts = [f"This is sheet {n} and its code word is token{n}x." for n in range(1, 8)]
    document = load_one(make_pdf(tmp_path / "seven.pdf", texts))
    assert [p.number for p in document.pages] == list(range(1, 8))
    for page in document.pages:
        assert f"token{page.number}x" in document.text[page.start : page.end]


def test_running_headers_and_footers_are_left_out_and_spans_stay_exact(tmp_path: Path) -> None:
    animals = ["walrus", "otter", "heron", "seal"]
    bodies = [f"Body of page {n}: the {a} quota is {n * 7} units.\nThe {a} note quotes ACME Corp - Confidential." for n, a in enumerate(animals, start=1)]
    pages = [f"ACME Corp - Confidential\n{body}\nQuarterly report - page {n} / 4" for n, body in enumerate(bodies, start=1)]
    pages[2] = pages[2].replace("ACME Corp - Confidential", "Only page three has this opening line", 1)  # on one page: content
    loaded = load(make_pdf(tmp_path / "report.pdf", pages))
    (document,) = loaded.documents
    assert "Quarterly report - page" not in document.text
    assert not any(line == "ACME Corp - Confidential" for line in document.text.split("\n"))
    assert "Only page three has this opening line" in document.text  # peeled only where it repeats
    for number, body in enumerate(bodies, start=1):
        page = next(p for p in document.pages if p.number == number)
        assert body in document.text[page.start : page.end]  # body lines (even one quoting the header) stay
    assert "header 'ACME Corp - Confidential' (3 pages)" in loaded.notes[0] and "(4 pages)" in loaded.notes[0]
    assert_chunk_invariants(document, chunk(document, "pdf"))


def test_running_line_detection_needs_repetition_and_leaves_lone_lines() -> None:
    from rag.ingest.loaders.running_lines import strip_running_lines

    assert strip_running_lines(["Header\nonly one page"]) == (["Header\nonly one page"], [])
    same_single_lines = ["Sheet 1 code token1x", "Sheet 2 code token2x", "Sheet 3 code token3x"]
    assert strip_running_lines(same_single_lines)[0] == same_single_lines  # a page's only line is its content
    long_line = "x" * 200
    assert strip_running_lines([f"{long_line}\na", f"{long_line}\nb"])[0] == [f"{long_line}\na", f"{long_line}\nb"]
    pages, removed = strip_running_lines(["Two-line header\nSecond header 1\nbody a", "Two-line header\nSecond header 2\nbody b"])
    assert pages == ["body a", "body b"] and [kind for kind, _, _ in removed] == ["header", "header"]


def test_pdf_without_text_is_a_load_error(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "blank.pdf", ["", ""])
    with pytest.raises(LoadError, match="no extractable text"):
        load(path)


# --- DOCX built here -----------------------------------------------------------------------
def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Benefits", level=1)
    d.add_paragraph("Benefits overview paragraph about perks.")
    d.add_heading("Vacation", level=2)
    d.add_paragraph("Everyone gets 27 vacation days.")
    d.add_heading("Carry over", level=3)
    d.add_paragraph("Up to 5 days carry over into March.")
    d.add_heading("Sick leave", level=2)
    d.add_paragraph("Sick leave is unlimited within reason.")
    table = d.add_table(rows=3, cols=3)
    for row, values in zip(table.rows, [("Plan", "Price", "Seats"), ("Starter", "$10", "5"), ("Team", "$20", "")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    d.add_heading("Conduct", level=1)
    d.add_paragraph("Be kind to colleagues at all times.")
    loose = d.add_table(rows=2, cols=2)  # duplicate header names: no usable header
    for row, values in zip(loose.rows, [("x", "x"), ("left cell", "right cell")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    d.save(str(path))
    return path


def test_docx_heading_styles_give_heading_paths(tmp_path: Path) -> None:
    document = load_one(make_docx(tmp_path / "made.docx"))
    assert [s.heading_path for s in document.sections] == [
        ("Benefits",),
        ("Benefits", "Vacation"),
        ("Benefits", "Vacation", "Carry over"),
        ("Benefits", "Sick leave"),
        ("Conduct",),
    ]
    assert section_of(document, "27 vacation days") == ("Benefits", "Vacation")
    assert section_of(document, "carry over into March") == ("Benefits", "Vacation", "Carry over")
    assert section_of(document, "Be kind") == ("Conduct",)


def test_docx_tables_render_as_header_value_rows(tmp_path: Path) -> None:
    document = load_one(make_docx(tmp_path / "made.docx"))
    lines = document.text.split("\n")
    assert "Plan: Starter; Price: $10; Seats: 5" in lines
    assert "Plan: Team; Price: $20" in lines  # empty cells are left out
    assert section_of(document, "Plan: Starter") == ("Benefits", "Sick leave")
    assert "left cell | right cell" in lines  # no usable header: plain rows


def test_docx_chunks_carry_their_section_heading_path(tmp_path: Path) -> None:
    document = load_one(make_docx(tmp_path / "made.docx"))
    chunks = chunk(document, "docx")
    assert_chunk_invariants(document, chunks)
    assert {c.heading_path for c in chunks if "27 vacation days" in c.text} == {("Benefits", "Vacation")}


def test_docx_that_is_not_a_word_package_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(LoadError, match="(?i)docx"):
        load(path)


# --- HTML built here -----------------------------------------------------------------------
HTML_PAGE = """<!DOCTYPE html>
<html><head><title>Made Guide</title>
<style>.banner { color: red } /* STYLE-TOKEN */</style>
<script>var tracker = "SCRIPT-TOKEN";</script></head>
<body>
<div class="cookie-banner">We use cookies COOKIE-TOKEN <button>Accept</button></div>
<header class="site-header"><a href="/">HEADER-TOKEN home</a></header>
<nav><ul><li><a href="/a">NAV-TOKEN link</a></li></ul></nav>
<main>
  <h1>Guide</h1>
  <p>Intro paragraph MAIN-ONE.</p>
  <nav class="toc"><a href="#x">INNER-NAV-TOKEN</a></nav>
  <h2>Install</h2>
  <p>Install with <code>apt</code> MAIN-TWO.</p>
  <script>INNER-SCRIPT-TOKEN()</script>
  <h3>Linux</h3>
  <ul><li>Linux step MAIN-THREE</li></ul>
  <h2>Configure</h2>
  <p>Configure MAIN-FOUR.</p>
  <table><tr><th>Key</th><th>Default</th></tr><tr><td>port</td><td>8640</td></tr></table>
</main>
<aside>ASIDE-TOKEN related</aside>
<footer><p>FOOTER-TOKEN copyright</p></footer>
</body></html>
"""


def test_html_headings_and_main_content(tmp_path: Path) -> None:
    path = tmp_path / "guide.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    loaded = load(path)
    (document,) = loaded.documents
    assert document.title == "Made Guide"
    assert [s.heading_path for s in document.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Linux"),
        ("Guide", "Configure"),
    ]
    assert section_of(document, "MAIN-ONE") == ("Guide",)
    assert section_of(document, "MAIN-TWO") == ("Guide", "Install")
    assert section_of(document, "MAIN-THREE") == ("Guide", "Install", "Linux")
    assert section_of(document, "MAIN-FOUR") == ("Guide", "Configure")
    assert "Key: port; Default: 8640" in document.text.split("\n")
    assert_chunk_invariants(document, chunk(document, "html"))


def test_html_boilerplate_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "guide.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    text = load_one(path).text
    for token in ["STYLE", "SCRIPT", "COOKIE", "HEADER", "NAV", "INNER-NAV", "INNER-SCRIPT", "ASIDE", "FOOTER"]:
        assert f"{token}-TOKEN" not in text
    assert "Accept" not in text


def test_html_without_main_drops_page_chrome_and_keeps_body(tmp_path: Path) -> None:
    path = tmp_path / "plain.html"
    path.write_text(
        "<html><body><header>HEADER-TOKEN</header><nav>NAV-TOKEN</nav>"
        "<div><h2>Notes</h2><p>Body text BODY-ONE.</p>Loose text BODY-TWO.</div>"
        "<aside>ASIDE-TOKEN</aside><footer>FOOTER-TOKEN</footer></body></html>",
        encoding="utf-8",
    )
    document = load_one(path)
    assert "BODY-ONE" in document.text and "BODY-TWO" in document.text
    for token in ["HEADER", "NAV", "ASIDE", "FOOTER"]:
        assert f"{token}-TOKEN" not in document.text
    assert section_of(document, "BODY-TWO") == ("Notes",)


def test_html_article_keeps_its_own_header(tmp_path: Path) -> None:
    path = tmp_path / "article.html"
    path.write_text(
        "<html><body><header>SITE-TOKEN</header><article><header><h1>Post</h1><p>By ARTICLE-AUTHOR</p></header>"
        "<p>Article body ARTICLE-BODY.</p></article><footer>FOOTER-TOKEN</footer></body></html>",
        encoding="utf-8",
    )
    text = load_one(path).text
    assert "ARTICLE-AUTHOR" in text and "ARTICLE-BODY" in text
    assert "SITE-TOKEN" not in text and "FOOTER-TOKEN" not in text


def test_html_without_visible_text_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text("<html><head><script>x()</script></head><body><nav>menu</nav></body></html>", encoding="utf-8")
    with pytest.raises(LoadError, match="no visible text"):
        load(path)


# --- Markdown built here -------------------------------------------------------------------
MARKDOWN = """Preamble before any heading.

# Top

Top text TOP-BODY.

## Middle

Middle text MIDDLE-BODY.

```bash
# not a heading CODE-COMMENT
echo hello
```

~~~
## also not a heading TILDE-COMMENT
~~~

#hashtag is not a heading HASHTAG-LINE

### Deep

Deep text DEEP-BODY.

## Second

Second text SECOND-BODY.
"""


def test_markdown_heading_paths_ignore_hashes_in_code(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    loaded = load(path)
    assert loaded.file_type == "markdown"
    (document,) = loaded.documents
    assert document.text == MARKDOWN
    assert document.title == "Top"
    assert [s.heading_path for s in document.sections] == [
        (),
        ("Top",),
        ("Top", "Middle"),
        ("Top", "Middle", "Deep"),
        ("Top", "Second"),
    ]
    assert section_of(document, "Preamble") == ()
    assert section_of(document, "TOP-BODY") == ("Top",)
    assert section_of(document, "CODE-COMMENT") == ("Top", "Middle")
    assert section_of(document, "TILDE-COMMENT") == ("Top", "Middle")
    assert section_of(document, "HASHTAG-LINE") == ("Top", "Middle")
    assert section_of(document, "DEEP-BODY") == ("Top", "Middle", "Deep")
    assert section_of(document, "SECOND-BODY") == ("Top", "Second")
    chunks = chunk(document, "markdown")
    assert_chunk_invariants(document, chunks)
    assert {c.heading_path for c in chunks if "CODE-COMMENT" in c.text} == {("Top", "Middle")}


def test_markdown_setext_headings_count(tmp_path: Path) -> None:
    path = tmp_path / "setext.md"
    path.write_text("Title Here\n==========\n\nIntro ONE.\n\nPart Two\n--------\n\nBody TWO.\n", encoding="utf-8")
    document = load_one(path)
    assert section_of(document, "ONE") == ("Title Here",)
    assert section_of(document, "TWO") == ("Title Here", "Part Two")


# --- plain text and encodings --------------------------------------------------------------
# These characters have the same byte in cp1252, latin-1 (where defined) and cp1250.
WESTERN_SAFE = "Our \u201cTravel Policy\u201d \u2014 updated 2024 \u2014 pays \u20ac45 a day; the caf\u00e9 isn\u2019t included. M\u00fcller \u00e4u\u00dfert Gr\u00f6\u00dfe.\n"
# These differ between cp1252 and cp1250 (\u00e8 vs \u010d, \u00e0 vs \u0155, \u00ef vs \u010f, \u00fb vs \u0171).
FRENCH = "La cr\u00e8me br\u00fbl\u00e9e na\u00efve \u00e0 la fa\u00e7on de Lef\u00e8vre, tr\u00e8s appr\u00e9ci\u00e9e \u00e0 No\u00ebl.\n"


def test_text_file_in_cp1252_is_decoded_with_a_note(tmp_path: Path) -> None:
    text = WESTERN_SAFE * 6
    path = tmp_path / "notes.txt"
    path.write_bytes(text.encode("cp1252"))
    loaded = load(path)
    assert loaded.file_type == "text"
    assert loaded.documents[0].text == text
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("not UTF-8")


def test_text_file_in_latin1_is_decoded_with_a_note(tmp_path: Path) -> None:
    text = "Die Gr\u00f6\u00dfe der Stra\u00dfe in M\u00fcnchen \u00fcberrascht; \u00c4rger \u00fcber \u00d6l.\n" * 8
    path = tmp_path / "german.txt"
    path.write_bytes(text.encode("latin-1"))
    loaded = load(path)
    assert loaded.documents[0].text == text
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("not UTF-8")


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_text_file_with_french_accents_is_decoded_correctly(tmp_path: Path, encoding: str) -> None:
    text = FRENCH * 8
    path = tmp_path / "french.txt"
    path.write_bytes(text.encode(encoding))
    loaded = load(path)
    assert loaded.notes and loaded.notes[0].startswith("not UTF-8")
    assert loaded.documents[0].text == text


def test_text_bom_crlf_and_utf16(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfline one\r\nline two\rline three\n")
    loaded = load(bom)
    assert loaded.documents[0].text == "line one\nline two\nline three\n"
    assert loaded.notes == []
    utf16 = tmp_path / "wide.txt"
    utf16.write_bytes("Wide caf\u00e9 text\nsecond line\n".encode("utf-16"))
    loaded = load(utf16)
    assert loaded.documents[0].text == "Wide caf\u00e9 text\nsecond line\n"
    assert loaded.notes and "utf" in loaded.notes[0].lower()


def test_text_chunks_cover_the_file(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(f"Paragraph {n}: " + "lorem ipsum dolor " * (n % 7 + 3) for n in range(40)), encoding="utf-8")
    document = load_one(path)
    assert_chunk_invariants(document, chunk(document, "text"))


def test_whitespace_only_text_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text("  \n\t\n", encoding="utf-8")
    with pytest.raises(LoadError, match="whitespace"):
        load(path)


# --- JSON Lines ----------------------------------------------------------------------------
def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_jsonl_records_keep_their_ids_titles_and_text(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "doc-a", "title": "Alpha title", "text": "Alpha body text."},
            {"_id": 17, "title": "", "text": "Record with a numeric id and no title."},
            {"_id": "doc-c", "title": "Gamma", "text": "Gamma body " * 80},
        ],
    )
    loaded = load(path)
    assert loaded.file_type == "jsonl"
    assert loaded.notes == []
    assert [d.doc_id for d in loaded.documents] == ["doc-a", "17", "doc-c"]
    a, b, c = loaded.documents
    assert a.title == "Alpha title" and "Alpha title" in a.text and "Alpha body text." in a.text
    assert a.sections and a.sections[0].heading_path == ("Alpha title",)
    assert b.text == "Record with a numeric id and no title." and b.sections == []
    for document in loaded.documents:
        chunks = chunk(document, "jsonl")
        assert {c.doc_id for c in chunks} == {document.doc_id}
        assert_chunk_invariants(document, chunks)


def test_jsonl_field_names_are_configurable(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "custom.jsonl",
        [{"pid": "p1", "name": "First", "body": "First body."}, {"pid": "p2", "name": "Second", "body": "Second body."}],
    )
    config = IngestConfig(jsonl=JsonlConfig(id_field="pid", title_field="name", text_field="body"))
    loaded = load(path, config)
    assert [(d.doc_id, d.title) for d in loaded.documents] == [("p1", "First"), ("p2", "Second")]
    assert "Second body." in loaded.documents[1].text
    with pytest.raises(LoadError, match="_id"):  # the default field names do not fit these records
        load(path)


def test_jsonl_bad_and_duplicate_records_are_noted_and_skipped(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"_id": "1", "text": "one"},
            "{not json",
            {"_id": "1", "text": "duplicate"},
            [1, 2],
            {"title": "no id", "text": "x"},
            {"_id": "2", "text": "two"},
        ],
    )
    loaded = load(path)
    assert [d.doc_id for d in loaded.documents] == ["1", "2"]
    assert loaded.documents[0].text == "one"
    (note,) = loaded.notes
    assert note.startswith("4 record(s) skipped")
    assert "line 2" in note and "line 3" in note and "duplicate id '1'" in note


def test_scifact_corpus_sample_keeps_beir_ids(tmp_path: Path) -> None:
    if not SCIFACT_CORPUS.is_file():
        pytest.skip(f"SciFact corpus not present at {SCIFACT_CORPUS}")
    lines = []
    with SCIFACT_CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            lines.append(line)
            if len(lines) == 25:
                break
    records = [json.loads(line) for line in lines]
    path = tmp_path / "scifact_head.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    loaded = load(path)
    assert [d.doc_id for d in loaded.documents] == [str(r["_id"]) for r in records]
    for record, document in zip(records, loaded.documents):
        assert record["text"].strip() in document.text
        if record.get("title"):
            assert document.title == record["title"].strip()
        assert_chunk_invariants(document, chunk(document, "jsonl"))
