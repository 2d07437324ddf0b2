"""Citation markers numbered in order of first appearance: an answer reads [1] ... [2] ... [3], never [3] ... [1].

The answerer cites passages by their retrieval rank, so its markers come out in any order. `MarkerOrder` renumbers
them as the checked text streams out (a marker's number is fixed the first time it is seen) and then renumbers
the citations and passages to match: cited passages get 1..k in the order they are first cited, the others the
next numbers by rank; the passage list itself stays in retrieval order. Every surface (CLI, `--json`, HTTP API,
UI) therefore agrees on the numbers.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rag.generate.citations import MARKER
from rag.types import Citation, Passage


class MarkerOrder:
    def __init__(self) -> None:
        self.mapping: dict[int, int] = {}  # original passage number -> number shown

    def text(self, text: str) -> str:
        """`text` with every marker renumbered; markers not seen before get the next numbers."""

        def renumber(match: re.Match[str]) -> str:
            numbers = [self._number(int(n)) for n in re.split(r"\s*,\s*", match.group(1))]
            lead = match.group(0)[0] if match.group(0)[0].isspace() else ""
            return f"{lead}[{', '.join(str(n) for n in sorted(dict.fromkeys(numbers)))}]"

        return MARKER.sub(renumber, text)

    def _number(self, original: int) -> int:
        if original not in self.mapping:
            self.mapping[original] = len(self.mapping) + 1
        return self.mapping[original]

    def citations(self, citations: list[Citation]) -> list[Citation]:
        """The citations with their shown numbers, in marker order (a marker's spans keep the order they were cited in)."""
        renumbered = [replace(c, marker=self._number(c.marker)) for c in citations]
        return sorted(renumbered, key=lambda c: c.marker)

    def passages(self, passages: list[Passage]) -> list[Passage]:
        """The passages renumbered 1..n (cited ones first, in citation order, then the rest by rank), kept in their
        retrieval order: rank-aware measures (context precision) read the list in the order the answerer got it."""
        for passage in sorted(passages, key=lambda p: (p.number not in self.mapping, self.mapping.get(p.number, 0), p.number)):
            self._number(passage.number)  # uncited passages take the numbers after the cited ones
        return [replace(p, number=self.mapping[p.number]) for p in passages]

    def dropped(self, dropped: list[dict[str, object]]) -> list[dict[str, object]]:
        """Trace entries of removed markers, renumbered where the marker named a passage that was given."""
        return [{**d, "marker": self._shown(d["marker"])} for d in dropped]

    def _shown(self, marker: object) -> object:
        """The shown number of a marker that named a given passage; anything else as it was."""
        return self.mapping.get(marker, marker) if isinstance(marker, int) else marker
