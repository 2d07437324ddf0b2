"""An answer in the terminal: its Markdown rendered (bold, lists, code) as it streams, then each cited source once.

On a terminal the answer is redrawn as each checked sentence arrives; piped, it is printed once, rendered the same
way (plain text, no colour codes). Extractive answers are quotes of the documents, which are often Markdown
themselves, so they are rendered too. `rag ask --json` keeps the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from rag.types import Answer, Citation

if TYPE_CHECKING:
    from rag.pipeline import StreamEvent

QUOTE_CHARS = 160  # longer cited spans are shortened in the sources list
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")  # a single newline: one answer sentence per line, kept as a line


def as_markdown(text: str) -> Markdown:
    """The answer as rich Markdown; single newlines stay line breaks (CommonMark would join the lines)."""
    return Markdown(_LINE_BREAK.sub("  \n", text))


def print_answer(events: Iterable[StreamEvent], console: Console | None = None) -> Answer:
    """Show streamed answer text as it is checked, then the sources; return the final Answer."""
    console = console or Console()
    text, answer = "", None
    if console.is_terminal:
        with Live(as_markdown(""), console=console, auto_refresh=False) as live:
            for event in events:
                if event.kind == "delta":
                    text += event.text
                    live.update(as_markdown(text), refresh=True)
                elif event.kind == "done":
                    answer = event.answer
    else:
        answer = next((e.answer for e in events if e.kind == "done"), None)
        if answer is not None:
            console.print(rendered_plain(answer.answer), markup=False, highlight=False, soft_wrap=True)
    assert answer is not None, "the answer stream ends with a done event"
    if answer.citations:
        print_sources_of(answer.citations, console)
    return answer


def rendered_plain(text: str) -> str:
    """The rendered answer as plain text for pipes and files: lines are not re-wrapped and carry no padding."""
    width = max([80, *(len(line) + 8 for line in text.splitlines())])
    plain = Console(width=width, color_system=None, force_terminal=False, legacy_windows=False)
    with plain.capture() as captured:
        plain.print(as_markdown(text))
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


@dataclass(slots=True)
class _Source:
    source: str
    markers: list[int] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)


def group_by_source(citations: list[Citation]) -> list[_Source]:
    """One entry per cited source, in the order of its first marker; each keeps its markers and spans (no repeats)."""
    grouped: dict[str, _Source] = {}
    for citation in sorted(citations, key=lambda c: c.marker):
        entry = grouped.setdefault(citation.source, _Source(citation.source))
        if citation.marker not in entry.markers:
            entry.markers.append(citation.marker)
        if not any((c.doc_id, c.start, c.end) == (citation.doc_id, citation.start, citation.end) for c in entry.citations):
            entry.citations.append(citation)
    return list(grouped.values())


def print_sources_of(citations: list[Citation], console: Console) -> None:
    console.print("\n[bold]Sources[/]")
    for entry in group_by_source(citations):
        markers = ", ".join(str(m) for m in entry.markers)
        console.print(f"  [{markers}] {entry.source}", markup=False, highlight=False)
        several_markers = len(entry.markers) > 1
        for citation in entry.citations:
            label = f"[{citation.marker}] " if several_markers else ""
            page = f"page {citation.page}, " if citation.page else ""
            quote = " ".join(citation.text.split())
            quote = quote if len(quote) <= QUOTE_CHARS else quote[: QUOTE_CHARS - 3] + "..."
            console.print(f"      {label}{page}chars {citation.start}-{citation.end}: \"{quote}\"", markup=False, highlight=False, soft_wrap=True)
