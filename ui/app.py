"""The chat UI's entry point: `rag ui --index DIR` (or `streamlit run ui/app.py`; the index then comes from
$RAG_UI_INDEX, else $RAG_INDEX, else .rag/index).

Two pages: Chat (ui/views/chat.py) and Evaluation (ui/views/evaluation.py); with `rag ui --api URL`, one: the
chat as a client of `rag serve` (ui/views/api_chat.py, people sign in). The logic lives in ui_support.py and
api_client.py (Streamlit-free, unit-tested) and the library; these files only lay it out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

UI_DIR = Path(__file__).resolve().parent
if str(UI_DIR) not in sys.path:  # the pages import the small modules beside this file
    sys.path.insert(0, str(UI_DIR))

import streamlit as st  # noqa: E402

from api_client import API_ENV  # noqa: E402
from rag.errors import RagError  # noqa: E402

# An emoji icon becomes an inline data: URL; a ":material/...:" page icon is fetched from fonts.gstatic.com (offline!).
st.set_page_config(page_title="rag: ask your documents", page_icon="📖", layout="wide")

# Widgets that are not drawn on a run lose their values; the settings live on the chat page's sidebar,
# so re-assigning them keeps a user's choices across a visit to the evaluation page.
for key in [k for k in st.session_state if str(k).startswith("setting_")]:
    st.session_state[key] = st.session_state[key]

if os.environ.get(API_ENV):  # a client of `rag serve`: people sign in; no page reads local files
    pages = [st.Page("views/api_chat.py", title="Chat", icon=":material/chat:", default=True)]
else:
    pages = [
        st.Page("views/chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("views/evaluation.py", title="Evaluation", icon=":material/monitoring:", url_path="evaluation"),
    ]
page = st.navigation(pages)
try:
    page.run()
except RagError as exc:  # a problem the user can fix: say what and how, never a traceback
    st.error(exc.message + (f"\n\n**Fix:** {exc.hint}" if exc.hint else ""))
except Exception as exc:  # anything else: keep the app alive and show what happened
    st.error(f"Unexpected error: {type(exc).__name__}: {exc}")
    st.exception(exc)
