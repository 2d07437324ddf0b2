"""Chat page: ask questions about the chosen index; answers stream in with clickable, checked citations."""

from __future__ import annotations

import streamlit as st

from chat_view import ask, empty_index_message, render_turn
from sidebar import render_sidebar

index_dir, config, filters = render_sidebar()
turns = st.session_state.setdefault("turns", [])

header, clear = st.columns([6, 1], vertical_alignment="bottom")
header.title("Ask your documents")
if clear.button("New chat", icon=":material/refresh:", disabled=not turns):
    st.session_state.turns = []
    st.rerun()

for position, turn in enumerate(turns):
    render_turn(position, turn, index_dir)

problem = empty_index_message(index_dir)
if problem:
    st.info(problem)
elif not turns:
    st.caption("Ask a question; follow-up questions are understood in context. Click a citation marker such as [1] to see the passage in its source.")

if filters.active:
    shown = "; ".join(f"{name.replace('_', ' ')}: {', '.join(values)}" for name, values in filters.describe().items())
    st.caption(f"Searching only {shown} (Filters in the sidebar).")
question = st.chat_input("Ask a question about your documents", disabled=bool(problem) or config is None)
if question and question.strip() and config is not None and not problem:
    ask(question.strip(), index_dir, config, filters, turns)
