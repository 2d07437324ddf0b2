"""Sentences and content words: the small units the extractive answerer and citation checks work on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import Stemmer

_WORD = re.compile(r"\w+", re.UNICODE)
CITATION_MARKER = re.compile(r"\s*\[(\d+)\]")  # one `[n]` in an answer, with the space before it


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    text: str


def sentences(text: str, offset: int = 0) -> list[Span]:
    """Sentence spans of `text` (sentencex), exact: `text[s.start - offset : s.end - offset] == s.text`.

    Line breaks end a unit (a table row, a list item, a heading) unless they look like a wrapped line
    (PDF text): the line does not end in punctuation and the next one starts in lower case.
    """
    from sentencex import segment

    spans: list[Span] = []
    for block_start, block_end in _line_blocks(text):
        block = text[block_start:block_end].replace("\n", " ")  # same length: offsets survive
        cursor = 0
        for piece in segment("en", block):
            stripped = piece.strip()
            if not stripped:
                continue
            start = block.find(stripped, cursor)
            if start < 0:  # the segmenter normalised something: skip rather than guess
                continue
            cursor = start + len(stripped)
            absolute = block_start + start
            spans.append(Span(offset + absolute, offset + absolute + len(stripped), text[absolute : absolute + len(stripped)]))
    return spans


def _line_blocks(text: str) -> list[tuple[int, int]]:
    blocks: list[tuple[int, int]] = []
    start = 0
    position = 0
    lines = text.split("\n")
    for index, line in enumerate(lines):
        end = position + len(line)
        following = lines[index + 1].lstrip() if index + 1 < len(lines) else ""
        wrapped = bool(line.strip()) and line.rstrip()[-1:] not in ".!?:;" and following[:1].islower()
        if not wrapped:
            if text[start:end].strip():
                blocks.append((start, end))
            start = end + 1
        position = end + 1
    return blocks


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | {"many", "much", "get", "gets", "got"}


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    import Stemmer

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> list[str]:
    """Lower-cased, stemmed words without stopwords; numbers kept as they are."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in _stopwords() and (len(w) > 1 or w.isdigit())]
    stems: list[str] = _stemmer().stemWords(kept)
    return stems


def strip_markers(answer: str) -> str:
    """The answer without its `[n]` citation markers."""
    return CITATION_MARKER.sub("", answer)


def numbers(text: str) -> set[str]:
    """Numbers as written (commas dropped), for checking that a cited span carries the claim's figures."""
    return {n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}
