"""Running page headers and footers: lines that begin or end most pages of a paged document.

A line counts as running when, with one varying number allowed (so "Page 3 of 5" matches "Page 4 of 5"), it is the
first (or last) line of at least half the pages and of two pages or more, and is short. Up to two header lines and two
footer lines per page are peeled off this way; a page's only line is never taken. Pages are changed before the document text is assembled, so
spans into that text stay exact.
"""

from __future__ import annotations

import math
import re
from collections import Counter

MIN_PAGES = 2  # a one-page document has no running lines
MIN_SHARE = 0.5  # of the pages a line must edge
MAX_CHARS = 120  # longer lines are content, not page furniture
DEPTH = 2  # header (and footer) lines peeled per page at most

_DIGITS = re.compile(r"\d+")


def strip_running_lines(pages: list[str]) -> tuple[list[str], list[tuple[str, str, int]]]:
    """The pages without their running headers and footers, and what was removed: (kind, first such line, pages)."""
    if len(pages) < MIN_PAGES:
        return pages, []
    lines = [page.split("\n") for page in pages]
    needed = max(MIN_PAGES, math.ceil(MIN_SHARE * len(pages)))
    removed: list[tuple[str, str, int]] = []
    for kind, from_end in (("header", False), ("footer", True)):
        for _ in range(DEPTH):
            edges = {  # never a page's only line
                number: index for number, page in enumerate(lines) if _content_lines(page) > 1 and (index := _edge(page, from_end)) is not None
            }
            keys = {number: _key(lines[number][index]) for number, index in edges.items()}
            counts = Counter(key for key in keys.values() if key)
            running = {
                key for key, count in counts.items()
                if count >= needed and _one_number_varies([lines[n][edges[n]] for n, k in keys.items() if k == key])
            }
            if not running:
                break
            for key in sorted(running, key=lambda k: -counts[k]):
                pages_with = [number for number, k in keys.items() if k == key]
                removed.append((kind, lines[pages_with[0]][edges[pages_with[0]]].strip(), len(pages_with)))
                for number in pages_with:
                    del lines[number][edges[number]]
    return ["\n".join(page) for page in lines], removed


def _content_lines(page: list[str]) -> int:
    return sum(1 for line in page if line.strip())


def _edge(page: list[str], from_end: bool) -> int | None:
    """Index of the first (or last) non-blank line of a page."""
    order = range(len(page) - 1, -1, -1) if from_end else range(len(page))
    return next((i for i in order if page[i].strip()), None)


def _one_number_varies(lines: list[str]) -> bool:
    """Running lines differ at most in one number (the page number); body lines such as "item 1 costs 7" differ in more."""
    runs = [_DIGITS.findall(line) for line in lines]
    varying = {position for found in runs[1:] for position, (a, b) in enumerate(zip(runs[0], found)) if a != b}
    return len(varying) <= 1


def _key(line: str) -> str:
    """What repeats: the line with digits ignored and spaces and case folded; "" for lines too long to be furniture."""
    text = " ".join(line.split())
    return "" if len(text) > MAX_CHARS else _DIGITS.sub("#", text).casefold()
