"""Evaluation page: the metric plots of recorded `rag eval` runs, and a paired comparison of two runs."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from eval_view import render_comparison, render_run, run_kind, run_label
from ui_support import default_runs_folder, list_runs

st.title("Evaluation runs")
folder = Path(st.text_input("Runs folder", value=str(default_runs_folder(Path(__file__).resolve().parents[2])), key="runs_folder",
                            help="A folder of run folders written by `rag eval retrieval|answers --out DIR`."))
runs = list_runs(folder)
if not runs:
    st.info(f"No evaluation runs in {folder}. Record one with `rag eval retrieval DATASET --out {folder}/NAME` "
            "or `rag eval answers ... --out ...`, or point this page at another folder.")
    st.stop()

with_metrics = [r for r in runs if run_kind(r) in ("retrieval", "answers")]
selected = st.multiselect("Runs to show", runs, default=(with_metrics or runs)[:2], format_func=run_label)
for run_folder in selected:
    render_run(run_folder)

st.header("Compare two runs")
render_comparison(runs)
