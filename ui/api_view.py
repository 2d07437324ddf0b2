"""The chat page in API mode (`rag ui --api URL`): sign-in, a sidebar for the signed-in caller, asking and
opening sources through `rag serve`, so every answer, passage and source view is filtered by the caller's groups.

Sign-in is an API key typed into a password field (kept in this browser session's state only), or, behind an SSO
proxy, the user name the proxy puts in the header `rag ui --sso-header` names (forwarded to the server, which
trusts it only from addresses in serve.trusted_proxies). A change of caller starts a new conversation.
"""

from __future__ import annotations

import os

import streamlit as st

from api_client import API_ENV, SSO_HEADER_ENV, ApiRefused, Caller, RagApi, chat_turn_from_json, source_view_from_json
from chat_view import ErrorTurn, StreamedAnswer, render_queued, render_turn, write_answer_stream
from rag.errors import RagError
from ui_support import UPLOAD_TYPES, ChatTurn, SpanRef, history_messages
from sidebar import _show_last_ingest

KEY = "api_key"  # session state: the signed-in API key


def server_url() -> str:
    return os.environ[API_ENV]


def sign_in() -> tuple[RagApi, Caller] | None:
    """The caller's client and identity, or None after drawing the sign-in form (or why sign-in failed)."""
    header = os.environ.get(SSO_HEADER_ENV)
    user = st.context.headers.get(header) if header else None
    if header and user:
        api = RagApi(server_url(), user_header=(header, user))
        try:
            return api, _same_caller(api.me())
        except ApiRefused as exc:
            st.error(f"Signed in by your company's login as **{user}**, but the rag server refused: {exc.message}"
                     + (f"\n\n**Fix:** {exc.hint}" if exc.hint else ""))
            return None
    key = st.session_state.get(KEY)
    if key:
        api = RagApi(server_url(), key=key)
        try:
            return api, _same_caller(api.me())
        except ApiRefused as exc:
            if exc.status == 401:  # revoked since sign-in: sign in again
                st.session_state.pop(KEY, None)
            st.error(exc.message + (f"\n\n**Fix:** {exc.hint}" if exc.hint else ""))
            if exc.status != 401:
                return None
    _sign_in_form()
    return None


def _sign_in_form() -> None:
    st.title("Sign in")
    st.caption(f"This chat answers from the documents of the rag server at {server_url()}; what you see depends on your API key.")
    with st.form("sign_in", clear_on_submit=True):
        typed = st.text_input("API key", type="password", placeholder="rag_…", help="Ask an administrator for one (`rag keys create`).")
        submitted = st.form_submit_button("Sign in", icon=":material/login:")
    if submitted and typed.strip():
        try:
            RagApi(server_url(), key=typed.strip()).me()
        except ApiRefused as exc:
            reason = "This API key was refused" if exc.status == 401 else "Sign-in failed"
            st.error(f"{reason}: {exc.message}." + (f"\n\n**Fix:** {exc.hint}" if exc.hint else ""))
            return
        st.session_state[KEY] = typed.strip()
        st.rerun()
    elif submitted:
        st.warning("Type your API key first.")


def _same_caller(caller: Caller) -> Caller:
    """Another caller than the last run's (sign-out and in, another SSO user): forget the conversation."""
    if st.session_state.get("api_caller") != caller:
        st.session_state.api_caller = caller
        st.session_state.turns, st.session_state.pending = [], []
        st.session_state.pop("last_ingest", None)
    return caller


def render_sidebar(api: RagApi, caller: Caller) -> int | None:
    """Who is signed in, sign-out, uploads (admin keys only), the number of chunks retrieved; returns top_k
    (None: the server's retrieval.top_k)."""
    with st.sidebar:
        st.subheader("Signed in")
        st.markdown(f"**{caller.name}** · {caller.describe()}")
        st.caption(f"Server: {api.base_url}")
        if st.session_state.get(KEY) and st.button("Sign out", icon=":material/logout:"):
            for name in (KEY, "api_caller", "turns", "pending", "last_ingest"):
                st.session_state.pop(name, None)
            st.rerun()
        _upload_form(api, caller)
        st.subheader("Settings")
        chosen = st.number_input("Chunks retrieved (top_k)", min_value=1, max_value=50, value=None, key="api_top_k", placeholder="the server's setting")
        return int(chosen) if chosen is not None else None


def _upload_form(api: RagApi, caller: Caller) -> None:
    reason = None if caller.admin else f"Uploading needs an admin key: {caller.name} may ask and read, not add documents."
    with st.form("api_upload", clear_on_submit=True, border=False):
        files = st.file_uploader("Add documents", type=UPLOAD_TYPES, accept_multiple_files=True, disabled=reason is not None,
                                 help=reason or "Sent to the server, kept in its uploads folder and ingested.")
        groups = st.text_input("Reader groups", placeholder="blank: every reader; or e.g. hr, finance", disabled=reason is not None)
        submitted = st.form_submit_button("Ingest", icon=":material/upload:", disabled=reason is not None)
    if reason:
        st.caption(reason)
    if submitted and files:
        chosen = [g.strip() for g in groups.split(",") if g.strip()] or None
        with st.spinner(f"Ingesting {len(files)} files on the server…"):
            try:
                report = api.upload([(f.name, f.getvalue()) for f in files], chosen)
                st.session_state.last_ingest = {"index": api.base_url, "report": report}
            except ApiRefused as exc:
                st.session_state.last_ingest = {"index": api.base_url, "error": exc.message, "hint": exc.hint}
        st.rerun()
    elif submitted:
        st.warning("Choose files to upload first.")
    _show_last_ingest(api.base_url)  # type: ignore[arg-type]  # compares str(index) with the server URL


def ask(api: RagApi, question: str, top_k: int | None, turns: list[ChatTurn | ErrorTurn], pending: list[str]) -> None:
    """Stream the server's answer into the page, keep the turn (or the error, with the text that had arrived),
    take the question off `pending` and redraw."""
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        turn: ChatTurn | ErrorTurn
        streamed = StreamedAnswer()
        history = history_messages([t for t in turns if isinstance(t, ChatTurn)])
        events = api.stream(question, history, top_k)
        try:
            write_answer_stream(events, streamed)
            turn = chat_turn_from_json(streamed.final)
        except RagError as exc:  # ApiRefused: refused, unreachable or broken mid-answer
            turn = ErrorTurn(question, exc.message, exc.hint, streamed.partial)
        finally:
            events.close()  # stopped mid-answer (a new question reran the page): close the connection
    turns.append(turn)
    pending.remove(question)
    st.rerun()


def source_opener(api: RagApi):  # noqa: ANN201 - a callable the source viewer calls with a SpanRef
    """The source viewer's reader: the document from the server, as this caller may read it."""

    def open_view(ref: SpanRef):  # noqa: ANN202
        return source_view_from_json(api.document(ref.source, ref.doc_id), ref)

    return open_view


def render_page() -> None:
    signed = sign_in()
    if signed is None:
        return
    api, caller = signed
    top_k = render_sidebar(api, caller)
    turns = st.session_state.setdefault("turns", [])
    pending = st.session_state.setdefault("pending", [])
    header, clear = st.columns([6, 1], vertical_alignment="bottom")
    header.title("Ask your documents")
    if clear.button("New chat", icon=":material/refresh:", disabled=not turns and not pending):
        st.session_state.turns, st.session_state.pending = [], []
        st.rerun()
    st.caption(f"Answers and sources come from {api.base_url} and include only the documents {caller.name} may read.")
    opener = source_opener(api)
    for position, turn in enumerate(turns):
        render_turn(position, turn, opener)  # type: ignore[arg-type]
    question = st.chat_input("Ask a question about your documents")
    if question and question.strip():
        pending.append(question.strip())
    if pending:
        answering = st.container()
        render_queued(pending[1:])
        with answering:
            ask(api, pending[0], top_k, turns, pending)
