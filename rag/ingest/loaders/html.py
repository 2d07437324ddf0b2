"""HTML: the main content with its headings; navigation, headers, footers and scripts dropped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import IngestLimits
from rag.errors import LoadError
from rag.ingest.limits import check_html_depth
from rag.ingest.loaders.builder import TextBuilder
from rag.ingest.loaders.tables import rows_to_text
from rag.ingest.loaders.text import decode_text
from rag.types import LoadedSource

if TYPE_CHECKING:
    from bs4 import Tag

_NEVER_CONTENT = ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "form", "button", "nav", "aside"]
_PAGE_CHROME = ["header", "footer"]  # boilerplate at page level, but an article's own header is content
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {"p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "caption", "address", "summary"}


def load_html(path: Path, doc_id: str, limits: IngestLimits | None = None) -> LoadedSource:
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    check_html_depth(data, limits or IngestLimits())  # before the tree (and the recursive walk below) is built
    text, notes = decode_text(data)
    soup = BeautifulSoup(text, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.find("article") or soup.body or soup
    for tag in root.find_all(_NEVER_CONTENT):
        tag.decompose()
    if root.name in ("body", "[document]"):
        for tag in root.find_all(_PAGE_CHROME):
            tag.decompose()
    for tag in root.find_all(attrs={"role": True}):
        if not tag.decomposed and tag.get("role") in _CHROME_ROLES:
            tag.decompose()
    for tag in root.find_all(attrs={"hidden": True}):
        if not tag.decomposed:
            tag.decompose()
    builder = TextBuilder()
    _walk(root, builder)
    document = builder.build(doc_id, title=title)
    if not document.text.strip():
        raise LoadError("the HTML page has no visible text content")
    return LoadedSource("html", [document], notes)


def _walk(node: Tag, builder: TextBuilder) -> None:
    """Emit headings, tables and text blocks in document order; loose inline text becomes a block."""
    from bs4 import NavigableString, Tag

    loose: list[str] = []

    def flush() -> None:
        if loose:
            builder.add_block(" ".join(" ".join(loose).split()))
            loose.clear()

    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString and child.strip():
                loose.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in _HEADINGS:
            flush()
            builder.add_heading(_HEADINGS[name], child.get_text(" ", strip=True))
        elif name == "table":
            flush()
            rows = [[cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])] for tr in child.find_all("tr")]
            builder.add_block(rows_to_text(rows))
        elif name in _BLOCKS and not child.find(list(_HEADINGS) + ["table", "p", "ul", "ol"]):
            flush()
            block = child.get_text(" ", strip=True) if name != "pre" else child.get_text()
            builder.add_block(("- " + block) if name == "li" else block)
        elif name == "br":
            continue
        elif _is_inline(child):
            loose.append(child.get_text(" ", strip=True))
        else:
            flush()
            _walk(child, builder)
    flush()


def _is_inline(tag: object) -> bool:
    return getattr(tag, "name", "") in {"a", "span", "strong", "em", "b", "i", "code", "small", "sup", "sub", "abbr", "mark", "time", "u", "kbd", "label", "q", "cite"}
