"""The CLI's answer display: Markdown rendered rather than printed raw, each cited source listed once."""

from __future__ import annotations

import io

from rich.console import Console

from rag.cli.answer_view import group_by_source, print_answer
from rag.generate.marker_order import MarkerOrder
from rag.pipeline import StreamEvent
from rag.types import Answer, Citation

ANSWER = "The **on-call engineer** is paged first [1].\nEscalations:\n- the team lead [1]\n- the director [2]\n\nSee `rota.md` [3]."
CITATIONS = [
    Citation(1, "data/support_sla.docx", "data/support_sla.docx", None, 3950, 4103, "Internally, severity 1 cases page the on-call engineer."),
    Citation(1, "data/support_sla.docx", "data/support_sla.docx", None, 3765, 3949, "Escalations go first to the support team lead."),
    Citation(2, "data/oncall_policy.md", "data/oncall_policy.md", None, 10, 60, "then to the Director of Customer Support"),
    Citation(3, "data/support_sla.docx", "data/support_sla.docx", None, 5000, 5040, "The rota lives in rota.md."),
]


def shown(text: str = ANSWER, citations: list[Citation] = CITATIONS) -> str:
    answer = Answer("who is paged?", text, citations, [], {})
    events = [StreamEvent("delta", line + "\n") for line in text.split("\n")] + [StreamEvent("done", answer=answer)]
    out = io.StringIO()
    assert print_answer(events, Console(file=out, width=100)) is answer
    return out.getvalue()


def test_markdown_is_rendered_not_printed_raw() -> None:
    text = shown()
    assert "**" not in text and "`" not in text and "\n- " not in text
    assert "The on-call engineer is paged first [1]." in text
    assert "• the team lead [1]" in text and "• the director [2]" in text
    assert "paged first [1].\nEscalations:\n" in text  # one sentence per line, as answered (not joined into one paragraph)
    assert not any(line != line.rstrip() for line in text.splitlines())  # piped output carries no padding


def test_each_source_is_listed_once_with_its_markers_and_spans() -> None:
    sources = shown().split("Sources", 1)[1]
    assert sources.count("data/support_sla.docx") == 1 and sources.count("data/oncall_policy.md") == 1
    assert "  [1, 3] data/support_sla.docx" in sources and "  [2] data/oncall_policy.md" in sources
    assert '[1] chars 3950-4103: "Internally' in sources and '[1] chars 3765-3949: "Escalations' in sources
    assert '[3] chars 5000-5040: "The rota' in sources
    assert 'chars 10-60: "then to the Director' in sources and "[2] chars" not in sources  # one marker: no label
    assert [g.markers for g in group_by_source(CITATIONS)] == [[1, 3], [2]]


def test_markers_are_renumbered_in_order_of_first_appearance() -> None:
    order = MarkerOrder()
    assert order.text("First [3]. Then [1, 3]. Again [1].") == "First [1]. Then [1, 2]. Again [2]."
    assert order.text(" and later [5]") == " and later [3]"  # the mapping carries across streamed pieces
    cited = [Citation(n, "s", "d", None, n, n + 1, "t") for n in (1, 3, 5)]
    assert [c.marker for c in order.citations(cited)] == [1, 2, 3] and [c.start for c in order.citations(cited)] == [3, 1, 5]


def test_passages_are_renumbered_but_stay_in_retrieval_order() -> None:
    from rag.types import Passage

    order = MarkerOrder()
    order.text("Cited second-ranked [2]. Then the fourth [4].")
    ranked = [Passage(n, "s", "k", "d", 0, 1, "t", None, (), 1.0 / n) for n in (1, 2, 3, 4)]
    assert [(p.number, p.score) for p in order.passages(ranked)] == [(3, 1.0), (1, 0.5), (4, 1 / 3), (2, 0.25)]
