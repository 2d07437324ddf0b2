"""One chat turn on screen: the answer with clickable citation markers, the sources panel, the retrieval trace,
and the source viewer that a citation opens. Asking streams the answer from RagPipeline.stream (local mode) or from
the server's chat completions (API mode), both drawn by `write_answer_stream`."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from rag.config import RagConfig
from rag.errors import RagError
from rag.retrieve.query import Query
from shared_pipelines import SHARED
from ui_support import (
    ChatTurn,
    SourceView,
    SpanRef,
    candidate_rows,
    answer_html,
    chat_turn,
    highlighted_html,
    history_messages,
    index_stats,
    open_source_view,
)

if TYPE_CHECKING:
    from api_client import ApiEvent
    from rag.pipeline import StreamEvent
    from rag.retrieve.filters import Filters

# Answer text with citation markers as links; a click sends the marker number back to Python.
ANSWER = st.components.v2.component(
    "rag_answer",
    css="""
.rag-answer p { margin: 0 0 0.6rem 0; line-height: 1.6; }
.rag-cite { color: var(--st-primary-color, #ff4b4b); font-weight: 600; text-decoration: none; cursor: pointer;
            padding: 0 2px; border-radius: 4px; }
.rag-cite:hover, .rag-cite:focus { background: rgba(255, 75, 75, 0.14); outline: none; }
""",
    js="""
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  let root = parentElement.querySelector(".rag-answer");
  if (!root) {
    root = document.createElement("div");
    root.className = "rag-answer";
    parentElement.appendChild(root);
  }
  root.innerHTML = data;  // built by ui_support.answer_html: text escaped, markers are links
  root.querySelectorAll("a.rag-cite").forEach((link) => {
    link.onclick = (event) => {
      event.preventDefault();
      setTriggerValue("cite", link.dataset.marker);
    };
  });
}
""",
)

# Scrolls the source viewer to the highlighted span once it is on the page.
SCROLL_TO_MARK = st.components.v2.component(
    "rag_scroll_to_mark",
    isolate_styles=False,
    js="""
export default function () {
  let tries = 0;
  const go = () => {
    const mark = document.querySelector("mark.rag-cited");
    if (mark) { mark.scrollIntoView({ block: "center" }); return; }
    if (++tries < 50) setTimeout(go, 100);
  };
  go();
}
""",
)


SourceOpener = Callable[[SpanRef], SourceView]  # where the source viewer reads a document when not from an index folder
MISSING = "–"  # shown in tables where a value does not apply (no page, a retriever that did not rank the chunk)
SIDEBAR_KEYS = re.compile(r"\b(?:llm|rerank|retrieval|rewrite)\.[a-z_]+")  # config keys the sidebar sets


@dataclass(slots=True)
class ErrorTurn:
    """A question that could not be answered, with what went wrong and how to fix it."""

    question: str
    message: str
    hint: str = ""
    partial: str = ""  # the answer text that had arrived when it failed, kept on screen


@dataclass(slots=True)
class StreamedAnswer:
    """What `write_answer_stream` drew: the text so far, and the final answer once it came (None before)."""

    text: list[str] = field(default_factory=list)
    final: Any = None

    @property
    def partial(self) -> str:
        return "".join(self.text)


# --- asking --------------------------------------------------------------------------------------
def ask(question: str, index_dir: Path, config: RagConfig, filters: Filters, turns: list[Any], pending: list[str]) -> None:
    """Stream the answer into the page, then keep the turn (or the error) in the session, take the question off
    `pending` and redraw. Interrupted before that (another question was asked), the question stays pending.
    The pipeline is the shared one for this index and settings (ui/shared_pipelines.py), not opened per question."""
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        turn: ChatTurn | ErrorTurn
        streamed = StreamedAnswer()
        try:
            with SHARED.lease(index_dir, config) as pipeline:
                history = history_messages([t for t in turns if isinstance(t, ChatTurn)])
                events = pipeline.stream(Query(question, history, filters))
                try:
                    write_answer_stream(events, streamed)
                    turn = chat_turn(streamed.final, pipeline.index.manifest)
                finally:
                    events.close()  # stopped mid-answer (a new question reran the page): end it before the lease
        except RagError as exc:
            hint = exc.hint + (" (here: the Settings in the sidebar)" if SIDEBAR_KEYS.search(exc.hint) else "")
            turn = ErrorTurn(question, exc.message, hint, streamed.partial)
        except Exception as exc:  # keep the conversation alive whatever failed
            turn = ErrorTurn(question, f"unexpected error: {type(exc).__name__}: {exc}", "see the server log for details", streamed.partial)
    turns.append(turn)
    pending.remove(question)
    st.rerun()


def render_queued(questions: list[str]) -> None:
    """Questions asked while another is answered: shown at once, answered in order."""
    for question in questions:
        with st.chat_message("user"):
            st.text(question)
            st.caption("Waiting: answered after the question above.")


def write_answer_stream(events: Iterator[StreamEvent] | Iterator[ApiEvent], streamed: StreamedAnswer) -> None:
    """Draw an answer as it streams: a spinner until the first text, then each delta as it arrives. The final
    answer (an Answer, or the server's JSON in API mode) lands in `streamed.final`; an error raised by `events`
    propagates, with the text drawn so far in `streamed.text`. A stream that ends without a final answer is a
    RagError."""
    with st.spinner("Searching the documents…"):
        first = next(events, None)  # retrieval, then the first checked sentence
    if first is not None:
        st.write_stream(_texts(itertools.chain([first], events), streamed))  # type: ignore[arg-type]
    if streamed.final is None:
        raise RagError("the answer ended before it was complete", "ask again")


def _texts(events: Iterator[StreamEvent] | Iterator[ApiEvent], streamed: StreamedAnswer) -> Iterator[str]:
    """The deltas' text for st.write_stream, kept in `streamed.text`; the final answer is put in `streamed.final`."""
    for event in events:
        if event.kind == "delta":
            streamed.text.append(event.text)
            yield event.text
        elif event.kind == "done":
            streamed.final = event.answer


def empty_index_message(index_dir: Path) -> str | None:
    """Why questions cannot be asked yet, or None when the index has chunks."""
    stats = index_stats(index_dir)
    if stats is None:
        return f"There is no index at {index_dir} yet. Upload documents in the sidebar to create it."
    if stats.chunks == 0:
        return f"The index {index_dir} is empty. Upload documents in the sidebar to ingest them."
    return None


# --- showing a turn ------------------------------------------------------------------------------
def render_turn(position: int, turn: ChatTurn | ErrorTurn, index_dir: Path | SourceOpener) -> None:
    with st.chat_message("user"):
        st.text(turn.question)
    with st.chat_message("assistant"):
        if isinstance(turn, ErrorTurn):
            if turn.partial:
                st.markdown(turn.partial)
            st.error(turn.message + (f"\n\n**Fix:** {turn.hint}" if turn.hint else ""))
            return
        clicked = ANSWER(data=answer_html(turn.answer, turn.labels(), markdown=turn.written_by_llm, short=turn.short_answer), key=f"answer-{position}", on_cite_change=lambda: None)
        if clicked.cite and str(clicked.cite).isdigit() and int(clicked.cite) in turn.citations:
            marker = int(clicked.cite)
            show_source(index_dir, turn.citations[marker], f"Citation [{marker}]")
        _citation_buttons(position, turn, index_dir)
        _summary_line(turn)
        with st.expander(f"Sources: {len(turn.passages)} passages", icon=":material/description:"):
            _sources_panel(position, turn, index_dir)
        with st.expander("Retrieval trace", icon=":material/query_stats:"):
            render_trace(turn)


def _citation_buttons(position: int, turn: ChatTurn, index_dir: Path | SourceOpener) -> None:
    if not turn.citations:
        return
    with st.container(horizontal=True, gap="small"):
        for marker, ref in sorted(turn.citations.items()):
            label = f"[{marker}] {Path(ref.source).name}" + (f", p. {ref.page}" if ref.page else "")
            if st.button(label, key=f"cite-{position}-{marker}", type="tertiary", icon=":material/format_quote:", help="Open the cited passage in its source"):
                show_source(index_dir, ref, f"Citation [{marker}]")


def _summary_line(turn: ChatTurn) -> None:
    trace = turn.trace
    generator = trace.generator
    answerer = (generator.model or generator.answerer if generator else None) or "extractive"
    st.caption(
        f"{_count(len(turn.citations), 'citation')} · {_count(len(turn.passages), 'passage')} · retrieval {_or_unknown(trace.retrieval_ms)} ms · "
        f"generation {_or_unknown(trace.generation_ms)} ms · answerer: {answerer}"
    )


def _or_unknown(value: float | None) -> str:
    return "?" if value is None else str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _sources_panel(position: int, turn: ChatTurn, index_dir: Path | SourceOpener) -> None:
    st.dataframe(
        turn.passages, hide_index=True, width="stretch", placeholder=MISSING,
        column_config={
            "passage": st.column_config.NumberColumn("#", width="small"),
            "cited": st.column_config.CheckboxColumn("cited"),
            "score": st.column_config.NumberColumn("score", format="%.3f", help="the score the passage was ranked by"),
            **{s: st.column_config.NumberColumn(s, format="%.3f") for s in ("dense", "bm25", "fused", "rerank")},
        },
    )
    with st.container(horizontal=True, gap="small"):
        for number, ref in sorted(turn.passage_refs.items()):
            if st.button(f"Open passage [{number}]", key=f"passage-{position}-{number}", type="secondary"):
                show_source(index_dir, ref, f"Passage [{number}]")


def render_trace(turn: ChatTurn) -> None:
    trace = turn.trace
    st.markdown("**Queries searched**")
    for query in trace.queries:
        st.code(query, language=None, wrap_lines=True)
    if trace.rewrite and trace.rewrite.standalone and trace.rewrite.standalone != turn.question:
        st.caption(f"Standalone question: {trace.rewrite.standalone}")
    for step, note in (trace.rewrite.notes if trace.rewrite else {}).items():
        st.caption(f"{step}: {note}")
    if trace.filters:
        st.caption(f"Filters: {trace.filters}")
    st.markdown("**Final ranking** (after fusion and reranking)")
    st.dataframe(candidate_rows(trace), hide_index=True, width="stretch", placeholder=MISSING,
                 column_config={s: st.column_config.NumberColumn(s, format="%.4f") for s in ("dense", "bm25", "fused", "rerank")})
    for number, step in enumerate(turn.retrievers, start=1):
        st.markdown(f"**Query {number}: candidates per retriever**")
        st.text(step["query"])
        dense, bm25 = st.columns(2)
        for column, name in ((dense, "dense"), (bm25, "bm25")):
            with column:
                st.caption(f"{name}: top {len(step[name])}")
                if step[name]:
                    st.dataframe(step[name], hide_index=True, width="stretch", placeholder=MISSING,
                                 column_order=("rank", "score", "source", "page", "text"))
    context = trace.context
    notes = [f"{context.passages} passages, {context.context_tokens} context tokens" if context else "? passages, ? context tokens"]
    if context and context.cut_by_relevance:
        notes.append(f"{context.cut_by_relevance} chunks cut by relevance")
    if trace.rerank:
        notes.append(f"reranker: {trace.rerank.kind}")
    st.caption(" · ".join(notes))
    for dropped in trace.citations_dropped:
        st.warning(f"Citation [{dropped.marker}] was removed: {dropped.reason}")
    with st.popover("Raw trace (JSON)"):
        st.json(trace.to_json(), expanded=False)


# --- the source viewer ---------------------------------------------------------------------------
@st.dialog("Source", width="large")
def show_source(index_dir: Path | SourceOpener, ref: SpanRef, label: str) -> None:
    """The cited document as stored in the index, the span highlighted and scrolled into view."""
    try:
        view = index_dir(ref) if callable(index_dir) else open_source_view(index_dir, ref)  # API mode: a reader of the server's
    except RagError as exc:
        st.error(exc.message + (f"\n\n**Fix:** {exc.hint}" if exc.hint else ""))
        return
    heading = " › ".join(view.heading_path)
    st.html(
        f'<div class="rag-source-head"><b>{html.escape(label)}</b> · <b>{html.escape(view.title)}</b>'
        + (f" · {html.escape(heading)}" if heading else "")
        + f'<br><span style="opacity: 0.7">{html.escape(view.source)} · characters {view.start:,}–{view.end:,}</span></div>'
    )
    st.html(highlighted_html(view))
    SCROLL_TO_MARK(key=f"scroll-{ref.source_key}-{ref.start}")
