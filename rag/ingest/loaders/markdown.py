"""Markdown: the source text itself is the document text; headings give the section structure."""

from __future__ import annotations

from pathlib import Path

from rag.errors import LoadError
from rag.ingest.loaders.text import decode_text
from rag.types import Document, LoadedSource, Section


def load_markdown(path: Path, doc_id: str) -> LoadedSource:
    text, notes = decode_text(path.read_bytes())
    if not text.strip():
        raise LoadError("the file contains only whitespace")
    sections, title = markdown_sections(text)
    return LoadedSource("markdown", [Document(doc_id=doc_id, text=text, title=title, sections=sections)], notes)


def markdown_sections(text: str) -> tuple[list[Section], str]:
    """Sections from ATX and setext headings found by markdown-it (so `#` inside code is not a heading)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    line_offsets = [0]
    for line in text.split("\n"):
        line_offsets.append(line_offsets[-1] + len(line) + 1)
    headings: list[tuple[int, int, str]] = []  # (char offset, level, title)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            headings.append((line_offsets[token.map[0]], int(token.tag[1]), tokens[index + 1].content.strip()))
    if not headings:
        return [], ""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    if headings[0][0] > 0 and text[: headings[0][0]].strip():
        sections.append(Section(0, headings[0][0], ()))
    for position, (start, level, title) in enumerate(headings):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = headings[position + 1][0] if position + 1 < len(headings) else len(text)
        sections.append(Section(start, end, tuple(t for _, t in stack)))
    title = next((t for _, level, t in headings if level == 1), "")
    return sections, title
