"""The chat page's sidebar: choose or create an index, upload files to ingest, settings that apply at once."""

from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

from rag.config import RagConfig, load_config, resolve_config_path
from rag.errors import RagError
from rag.retrieve.filters import Filters
from ui_support import (
    INDEX_ENV,
    UPLOAD_TYPES,
    CallbackProgress,
    IndexStats,
    Settings,
    base_overrides,
    chosen_filters,
    index_label,
    index_stats,
    is_index,
    known_indexes,
    save_uploads,
)

DEFAULT_INDEX = ".rag/index"
FILTER_KEYS = ("setting_filter_file_types", "setting_filter_tags", "setting_filter_sources")


def launch_index() -> Path:
    return Path(os.environ.get(INDEX_ENV) or os.environ.get("RAG_INDEX") or DEFAULT_INDEX)


def current_index() -> Path:
    if "index_dir" not in st.session_state:
        st.session_state.index_dir = str(launch_index())
    return Path(st.session_state.index_dir)


def switch_index(folder: Path) -> None:
    """A different index starts a new conversation (its answers cite another index's documents)."""
    st.session_state.index_dir = str(folder)
    st.session_state.turns = []
    for key in FILTER_KEYS:  # another index has other file types and tags
        st.session_state.pop(key, None)
    st.session_state.pop("last_ingest", None)


def render_sidebar() -> tuple[Path, RagConfig | None, Filters]:
    """Draw the sidebar; return the index folder, the effective config (None when the settings are invalid)
    and the filters the next question searches under."""
    with st.sidebar:
        base = _base_config()
        index_dir = _index_picker()
        stats = index_stats(index_dir)  # read once per run: an upload reruns the script
        _index_status(stats)
        _new_index_form(base)
        _upload_form(index_dir, base)
        filters = _filters(stats)
        config = _settings(base) if base is not None else None
    return index_dir, config, filters


def _base_config() -> RagConfig | None:
    try:
        return load_config(resolve_config_path(None), base_overrides())
    except RagError as exc:
        st.error(f"The configuration is invalid: {exc.message}\n\n**Fix:** {exc.hint}")
        return None


# --- index ---------------------------------------------------------------------------------------
def _index_picker() -> Path:
    current = current_index()
    st.subheader("Index")
    options = [str(p) for p in known_indexes(launch_index())]
    if str(current) not in options:
        options.append(str(current))
    choice = st.selectbox("Index folder", options, index=options.index(str(current)), format_func=lambda o: index_label(Path(o)),
                          help="Index folders beside the one `rag ui` opened.")
    if choice != str(current):
        switch_index(Path(choice))
        st.rerun()
    st.caption(re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", current.resolve().as_posix()))  # the full path, wrapped, never cut
    return current


def _index_status(stats: IndexStats | None) -> None:
    if stats is None:
        st.warning("No index here yet: upload files below to create it.")
    elif stats.chunks == 0:
        st.warning("This index is empty: upload files below.")
    else:
        st.caption(f"{stats.sources} sources · {stats.chunks} chunks")


def _new_index_form(base: RagConfig | None) -> None:
    with st.popover("New index", icon=":material/add:"):
        name = st.text_input("Folder", placeholder=str(launch_index().parent / "my-docs"), key="new_index_folder")
        if st.button("Create", key="create_index", disabled=base is None):
            assert base is not None, "the button is disabled without a valid config"
            _create_index(Path(name.strip()) if name.strip() else None, base)


def _create_index(folder: Path | None, base: RagConfig) -> None:
    from rag.index.store import Index

    if folder is None:
        st.error("Type a folder for the new index, e.g. .rag/my-docs")
        return
    if folder.is_file() or (folder.is_dir() and not is_index(folder) and any(folder.iterdir())):
        st.error(f"{folder} exists and is not an index; choose an empty or new folder")
        return
    try:
        with Index.open(folder, base, writable=True):
            pass
    except (RagError, OSError) as exc:
        st.error(f"Could not create an index at {folder}: {exc}")
        return
    switch_index(folder)
    st.rerun()


# --- uploads -------------------------------------------------------------------------------------
def _upload_form(index_dir: Path, base: RagConfig | None) -> None:
    with st.form("upload", clear_on_submit=True, border=False):
        files = st.file_uploader(
            "Add documents", type=UPLOAD_TYPES, accept_multiple_files=True,
            help="PDF, DOCX, HTML, Markdown, text or JSON Lines. Kept in the index folder's uploads/ and ingested.",
        )
        submitted = st.form_submit_button("Ingest", icon=":material/upload:", disabled=base is None)
    if submitted and files:
        assert base is not None, "the button is disabled without a valid config"
        st.session_state.last_ingest = _ingest(index_dir, base, [(f.name, f.getvalue()) for f in files])
        st.rerun()
    elif submitted:
        st.warning("Choose files to upload first.")
    _show_last_ingest(index_dir)


def _ingest(index_dir: Path, config: RagConfig, files: list[tuple[str, bytes]]) -> dict[str, object]:
    """Save and ingest the uploads; a failed file is reported and the others are still ingested."""
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    bar = st.progress(0.0, text=f"Saving {len(files)} files")

    def report(phase: str, done: int, total: int) -> None:
        bar.progress(done / total, text=f"{phase}: {done}/{total}")

    try:
        paths = save_uploads(index_dir, files)
        with Index.open(index_dir, config, writable=True) as index:
            result = Ingestor(index, CallbackProgress(report)).ingest(paths)
    except RagError as exc:
        return {"index": str(index_dir), "error": exc.message, "hint": exc.hint}
    except Exception as exc:  # keep the app alive; the index journal repairs an interrupted write next time
        return {"index": str(index_dir), "error": f"ingestion stopped: {type(exc).__name__}: {exc}", "hint": "check the server log; the next ingest repairs the index"}
    finally:
        bar.empty()
    return {"index": str(index_dir), "report": result.to_json()}


def _show_last_ingest(index_dir: Path) -> None:
    last = st.session_state.get("last_ingest")
    if not last or last.get("index") != str(index_dir):
        return
    if "error" in last:
        st.error(f"{last['error']}" + (f"\n\n**Fix:** {last['hint']}" if last.get("hint") else ""))
        return
    report = last["report"]
    summary = f"{report['new']} new, {report['changed']} changed, {report['unchanged']} unchanged · {report['chunks_added']} chunks added in {report['seconds']:.1f} s"
    (st.warning if report["failed"] else st.success)(summary + (f" · {len(report['failed'])} failed" if report["failed"] else ""))
    for problem in report["failed"]:
        st.error(f"**{problem['path']}** was not ingested: {problem['reason']}")
    for problem in report["skipped"]:
        st.warning(f"**{problem['path']}** skipped: {problem['reason']}")
    for problem in report["notes"]:
        st.caption(f"{problem['path']}: {problem['reason']}")


# --- filters -------------------------------------------------------------------------------------
def _filters(stats: IndexStats | None) -> Filters:
    """Narrow the search to some file types, tags or source paths; applies to the next question."""
    file_types, tags = (stats.file_types, stats.tags) if stats else ([], [])
    for key, options in (("setting_filter_file_types", file_types), ("setting_filter_tags", tags)):
        st.session_state[key] = [value for value in st.session_state.get(key, []) if value in options]
    chosen = chosen_filters(
        st.session_state["setting_filter_file_types"], st.session_state["setting_filter_tags"], st.session_state.get("setting_filter_sources", "")
    )
    with st.expander("Filters" + (" (on)" if chosen.active else ""), expanded=False):
        st.multiselect("File types", file_types, key="setting_filter_file_types", placeholder="all")
        st.multiselect("Tags (any of)", tags, key="setting_filter_tags", placeholder="no tags in this index" if not tags else "all")
        st.text_input("Sources", key="setting_filter_sources", placeholder="all, or globs: data/hr, data/*.pdf",
                      help="Paths as given at ingest; `*` stays within a folder, `**` crosses folders, a folder matches everything under it.")
    return chosen


# --- settings ------------------------------------------------------------------------------------
def _settings(base: RagConfig) -> RagConfig | None:
    """Widgets start from the base config (file, environment, `rag ui --set`); every change applies to the next question."""
    defaults = Settings.from_config(base).as_dict()
    for name, value in defaults.items():
        st.session_state.setdefault(f"setting_{name}", value)
    st.subheader("Settings")
    with st.expander("Retrieval", expanded=False):
        st.number_input("Chunks retrieved (top_k)", min_value=1, max_value=200, key="setting_top_k")
        st.selectbox("Fusion", ["convex", "rrf"], key="setting_fusion", help="convex: weighted normalised scores; rrf: reciprocal rank fusion.")
        st.toggle("Condense follow-up questions", key="setting_condense")
        st.number_input("Extra paraphrased queries (needs an LLM)", min_value=0, max_value=8, key="setting_multi_query")
        st.toggle("HyDE: also search with a hypothetical answer (needs an LLM)", key="setting_hyde")
        st.selectbox("Reranker", ["none", "cross-encoder", "endpoint", "llm"], key="setting_rerank")
        if st.session_state.setting_rerank == "cross-encoder":
            st.text_input("Cross-encoder folder", key="setting_rerank_model_path")
        if st.session_state.setting_rerank == "endpoint":
            st.text_input("Rerank endpoint URL", key="setting_rerank_base_url", placeholder="http://localhost:8000/v1")
            st.text_input("Rerank model", key="setting_rerank_model")
    with st.expander("Generator", expanded=False):
        st.selectbox("LLM", ["none", "openai", "llamacpp"], key="setting_llm_provider",
                     format_func={"none": "none (offline extractive answers)", "openai": "OpenAI-compatible endpoint", "llamacpp": "local GGUF model"}.get)
        if st.session_state.setting_llm_provider == "openai":
            st.text_input("Endpoint base URL", key="setting_llm_base_url", placeholder="http://localhost:8000/v1")
            st.text_input("Model", key="setting_llm_model")
            st.text_input("API key (blank: $OPENAI_API_KEY or the config's)", key="setting_llm_api_key", type="password")
        if st.session_state.setting_llm_provider == "llamacpp":
            st.text_input("GGUF file", key="setting_llm_gguf_path")
    chosen = Settings(**{name: st.session_state[f"setting_{name}"] for name in defaults})
    try:
        config = load_config(resolve_config_path(None), base_overrides() + chosen.overrides())
    except RagError as exc:
        st.error(f"These settings are invalid: {exc.message}")
        return None
    st.caption("Changes apply to the next question.")
    return config
