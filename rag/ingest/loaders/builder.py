"""Assemble a document's extracted text block by block while recording exact spans.

Every loader goes through this builder, so page and section spans are right by construction
and chunk spans (computed later against `Document.text`) can be checked with plain slicing.
"""

from __future__ import annotations

from rag.types import Document, Page, Section

BLOCK_SEPARATOR = "\n\n"


class TextBuilder:
    """Collects text blocks, headings and page breaks into a `Document`."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._headings: list[tuple[int, str]] = []  # (level, title) stack
        self._section_start = 0
        self._sections: list[Section] = []
        self._page_start: int | None = None
        self._page_number = 0
        self._pages: list[Page] = []

    def _append(self, text: str) -> None:
        if self._length:
            self._parts.append(BLOCK_SEPARATOR)
            self._length += len(BLOCK_SEPARATOR)
        self._parts.append(text)
        self._length += len(text)

    def add_block(self, text: str) -> None:
        """Add a paragraph-like block; blank blocks are ignored."""
        text = text.strip()
        if text:
            self._append(text)

    def add_heading(self, level: int, title: str) -> None:
        """Close the current section and open one under `title` at `level` (1 = top)."""
        title = " ".join(title.split())
        if not title:
            return
        self._close_section()
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, title))
        self._section_start = self._length + (len(BLOCK_SEPARATOR) if self._length else 0)
        self._append(title)

    def start_page(self, number: int) -> None:
        """Begin page `number`; text added until the next call belongs to it."""
        self._close_page()
        self._page_number = number
        self._page_start = self._length + (len(BLOCK_SEPARATOR) if self._length else 0)

    def _close_section(self) -> None:
        if self._length > self._section_start:
            path = tuple(title for _, title in self._headings)
            self._sections.append(Section(self._section_start, self._length, path))
        self._section_start = self._length

    def _close_page(self) -> None:
        if self._page_start is not None and self._length > self._page_start:
            self._pages.append(Page(self._page_start, self._length, self._page_number))
        self._page_start = None

    def build(self, doc_id: str, title: str = "") -> Document:
        self._close_section()
        self._close_page()
        sections = self._sections if any(s.heading_path for s in self._sections) else []
        return Document(doc_id=doc_id, text="".join(self._parts), title=title, sections=sections, pages=self._pages)
