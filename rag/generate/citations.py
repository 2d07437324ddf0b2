"""Citation checking: every `[n]` in an answer is verified against the passage it points to.

The check, per sentence of the answer and per marker in it:
1. the marker points at a passage that was given to the generator (else the marker is removed);
2. every quoted string (in double quotes, 3+ words) in the sentence appears verbatim in that passage;
3. every number in the sentence appears in that passage;
4. enough of the sentence's content words (stemmed, stopwords removed) occur in one or two adjacent
   sentences of the passage (`min_support`, a recall ratio); that window becomes the citation's span;
5. the span is re-read from the stored document text and must equal the quoted text.
A marker that fails any step is removed from the answer and reported in the trace, never returned.
Streaming goes through the same code: text is released sentence by sentence, after its check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag.index.contracts import Catalog
from rag.text_units import Span, content_terms, numbers, sentences
from rag.types import Citation, Document, Passage

MARKER = re.compile(r"\s?\[(\d+(?:\s*,\s*\d+)*)\]")
QUOTE = re.compile(r"[\"\u201c]([^\"\u201c\u201d]+)[\"\u201d]")
# A sentence is finished once its terminator (and any markers after it) is followed by the next sentence.
BOUNDARY = re.compile(r"(?:[.!?](?:\s?\[\d+(?:\s*,\s*\d+)*\])*[ \t]+(?=[^\s\[])|\n+)")


@dataclass(slots=True)
class CheckedText:
    text: str
    citations: list[Citation] = field(default_factory=list)
    dropped: list[dict[str, object]] = field(default_factory=list)


class CitationChecker:
    def __init__(self, passages: list[Passage], manifest: Catalog, min_support: float = 0.5) -> None:
        self.passages = {p.number: p for p in passages}
        self.manifest = manifest
        self.min_support = min_support
        self._sentences: dict[int, list[Span]] = {}
        self._documents: dict[tuple[str, str], Document | None] = {}  # read once per answer, not once per marker

    def check(self, sentence: str) -> CheckedText:
        """Verify the markers of one answer sentence; return it with failing markers removed."""
        claim = MARKER.sub("", sentence).strip()
        result = CheckedText(text="")
        kept_by_group: list[tuple[re.Match[str], list[int]]] = []
        for match in MARKER.finditer(sentence):
            kept: list[int] = []
            for number in (int(n) for n in re.split(r"\s*,\s*", match.group(1))):
                citation, reason = self._verify(number, claim)
                if citation is None:
                    result.dropped.append({"marker": number, "sentence": claim, "reason": reason})
                else:
                    kept.append(number)
                    if citation not in result.citations:
                        result.citations.append(citation)
            kept_by_group.append((match, kept))
        result.text = _rewrite_markers(sentence, kept_by_group)
        return result

    def _verify(self, number: int, claim: str) -> tuple[Citation | None, str]:
        passage = self.passages.get(number)
        if passage is None:
            return None, f"no passage [{number}] was given to the generator"
        folded = _fold(passage.text)
        for quoted in QUOTE.findall(claim):
            if len(quoted.split()) >= 3 and _fold(quoted) not in folded:
                return None, f"quoted text not found in passage [{number}]: {quoted!r}"
        missing = numbers(claim) - numbers(passage.text)
        if missing:
            return None, f"figures {sorted(missing)} are not in passage [{number}]"
        window, support = self._best_window(passage, claim)
        if window is None or support < self.min_support:
            return None, f"passage [{number}] does not support the sentence (support {support:.2f} < {self.min_support})"
        key = (passage.source_key, passage.doc_id)
        if key not in self._documents:
            self._documents[key] = self.manifest.document(*key)
        document = self._documents[key]
        if document is None or document.text[window.start : window.end] != window.text:
            return None, f"passage [{number}] no longer matches its source document"
        page = next((p.number for p in document.pages if p.start <= window.start < p.end), passage.page)
        return Citation(number, passage.source, passage.doc_id, page, window.start, window.end, window.text), ""

    def _best_window(self, passage: Passage, claim: str) -> tuple[Span | None, float]:
        """The one or two adjacent passage sentences that cover most of the claim's content words."""
        terms = set(content_terms(claim))
        spans = self._sentences.setdefault(passage.number, sentences(passage.text, passage.start))
        if not spans:
            return None, 0.0
        if not terms:  # nothing to check beyond quotes and figures: cite the passage's first sentence
            return spans[0], 1.0
        windows = [(i, i) for i in range(len(spans))] + [(i, i + 1) for i in range(len(spans) - 1)]
        best: tuple[Span | None, float] = (None, -1.0)
        for first, last in windows:  # single sentences first: a pair must cover strictly more to win
            start, end = spans[first].start, spans[last].end
            window = Span(start, end, passage.text[start - passage.start : end - passage.start])
            covered = len(terms & set(content_terms(window.text))) / len(terms)
            if covered > best[1] + 1e-9:
                best = (window, covered)
        return best


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def _rewrite_markers(sentence: str, groups: list[tuple[re.Match[str], list[int]]]) -> str:
    out: list[str] = []
    cursor = 0
    for match, kept in groups:
        out.append(sentence[cursor : match.start()])
        if kept:
            out.append(("" if match.group(0)[0] == "[" else match.group(0)[0]) + "[" + ", ".join(map(str, kept)) + "]")
        cursor = match.end()
    out.append(sentence[cursor:])
    return "".join(out)


class CitationStream:
    """Feeds generator deltas through the checker one finished sentence at a time."""

    def __init__(self, checker: CitationChecker) -> None:
        self.checker = checker
        self._buffer = ""
        self.citations: list[Citation] = []
        self.dropped: list[dict[str, object]] = []
        self.text = ""

    def feed(self, delta: str) -> Iterator[CheckedText]:
        self._buffer += delta
        while True:
            match = BOUNDARY.search(self._buffer)
            if match is None:
                return
            sentence, self._buffer = self._buffer[: match.end()], self._buffer[match.end() :]
            yield self._emit(sentence)

    def finish(self) -> Iterator[CheckedText]:
        if self._buffer:
            sentence, self._buffer = self._buffer, ""
            yield self._emit(sentence)

    def _emit(self, sentence: str) -> CheckedText:
        trailing = sentence[len(sentence.rstrip()) :]
        checked = self.checker.check(sentence.rstrip())
        checked.text += trailing
        for citation in checked.citations:
            if citation not in self.citations:
                self.citations.append(citation)
        self.dropped.extend(checked.dropped)
        self.text += checked.text
        return checked
