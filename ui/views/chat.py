"""Chat page: ask questions about the chosen index; answers stream in with clickable, checked citations.

Questions wait in `st.session_state.pending` until their answer is kept: a question asked while another is being
answered stops that run (Streamlit reruns the page at once), so the earlier question is answered again on the
next run instead of being lost, and the new one after it.
"""

from __future__ import annotations

import streamlit as st

from chat_view import ask, empty_index_message, render_queued, render_turn
from ui_support import sources_matching
from sidebar import render_sidebar

index_dir, config, filters = render_sidebar()
turns = st.session_state.setdefault("turns", [])
pending = st.session_state.setdefault("pending", [])

header, clear = st.columns([6, 1], vertical_alignment="bottom")
header.title("Ask your documents")
st.caption("Local mode: this page reads the index files and shows every document, whatever its reader groups. "
           "To sign people in and show each only what they may read, use `rag serve` and `rag ui --api URL`.")
if clear.button("New chat", icon=":material/refresh:", disabled=not turns and not pending):
    st.session_state.turns, st.session_state.pending = [], []
    st.rerun()

for position, turn in enumerate(turns):
    render_turn(position, turn, index_dir)

problem = empty_index_message(index_dir)
if problem:
    st.info(problem)
elif not turns and not pending:
    st.caption("Ask a question; follow-up questions are understood in context. Click a citation marker such as [1] to see the passage in its source.")

matching = sources_matching(index_dir, filters)
if filters.active:
    shown = "; ".join(f"{name.replace('_', ' ')}: {', '.join(values)}" for name, values in filters.describe().items())
    kept = f" ({matching[0]} of {matching[1]} sources)" if matching else ""
    st.caption(f"Searching only {shown}{kept} (Filters in the sidebar).")
    if matching and matching[0] == 0:
        st.warning("No indexed document matches these filters, so a question would search nothing. Change or clear the Filters in the sidebar.")
        problem = problem or "filters match nothing"
question = st.chat_input("Ask a question about your documents", disabled=bool(problem) or config is None)
if question and question.strip():
    pending.append(question.strip())
if pending and config is not None and not problem:
    answering = st.container()
    render_queued(pending[1:])
    with answering:
        ask(pending[0], index_dir, config, filters, turns, pending)
elif pending:
    render_queued(pending)
