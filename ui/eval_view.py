"""The evaluation page's parts: one run's metrics and plots (rag.evaluate.report), a comparison (rag.evaluate.compare)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from rag.errors import RagError
from rag.evaluate.report import Run, charts, load_run, summary_metrics
from ui_support import comparison_defaults, comparison_rows

PLOTS_PER_ROW = 3


def _meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def run_kind(folder: Path) -> str:
    return str(_meta(folder).get("kind", "?"))


def run_label(folder: Path) -> str:
    meta = _meta(folder)
    dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    return f"{folder.name} ({meta.get('kind', '?')}, {dataset.get('name', '?')})" if meta else folder.name


def _stamp(folder: Path) -> float:
    """Changes when the run is rewritten, so cached plots are redrawn."""
    return max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)


@st.cache_resource(max_entries=32, show_spinner=False)
def _load(folder: str, stamp: float) -> Run:
    return load_run(Path(folder))


@st.cache_data(max_entries=32, show_spinner="Drawing plots…")
def _plots(folder: str, stamp: float) -> list[tuple[str, str, bytes]]:
    return [(c.kind, c.caption, c.png) for c in charts(_load(folder, stamp))]


def render_run(folder: Path) -> None:
    with st.container(border=True):
        st.subheader(folder.name)
        try:
            stamp = _stamp(folder)
            run = _load(str(folder), stamp)
        except (RagError, OSError) as exc:
            st.error(f"Cannot read this run: {exc}")
            return
        dataset = run.dataset_name or "?"
        started = run.meta.get("started", "?")
        code = run.meta.get("code") or {}
        st.caption(f"{run.kind} run · dataset {dataset} · started {started} · configs: {', '.join(run.configs) or 'none'}"
                   + (f" · commit {str(code.get('git_commit'))[:10]}" if code.get("git_commit") else ""))
        if run.approximation:
            st.warning("These answer metrics come from an offline judge that needs no LLM: an approximation of an LLM judge.")
        rows = _metric_rows(run)
        if not rows:
            st.info("This run has no per-config metrics to plot (e.g. a judge meta-evaluation); its summary.json holds its figures.")
            with st.expander("summary.json"):
                st.json(run.summary, expanded=False)
            return
        st.dataframe(rows, hide_index=True, width="stretch")
        plots = _plots(str(folder), stamp)
        for kind, title in (("bar", "Metrics per config"), ("dist", "Per-query distributions")):
            selected = [(caption, png) for k, caption, png in plots if k == kind]
            if not selected:
                continue
            st.markdown(f"**{title}**")
            for begin in range(0, len(selected), PLOTS_PER_ROW):
                for column, (caption, png) in zip(st.columns(PLOTS_PER_ROW), selected[begin : begin + PLOTS_PER_ROW]):
                    column.image(png, caption=caption)


def _metric_rows(run: Run) -> list[dict[str, Any]]:
    rows = []
    for config, stats in summary_metrics(run).items():
        if not stats:
            continue
        row: dict[str, Any] = {"config": config}
        for name, s in stats.items():
            mean = s.get("mean")
            ci = f" [{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s.get("ci_low") is not None and s.get("ci_high") is not None else ""
            row[name] = "n/a" if mean is None else f"{mean:.4f}{ci}"
        rows.append(row)
    return rows


def render_comparison(runs: list[Path]) -> None:
    """Pick run A / config A and run B / config B; show per-metric deltas B - A with a paired test."""
    defaults = comparison_defaults(runs, _meta)
    if defaults is None:
        st.info("No two runs here can be compared by default: record a second run of the same kind and dataset, "
                "or a run with two configs (`--config a.yaml --config b.yaml`), or pick two runs below.")
    left, right = st.columns(2)
    sides = []
    for column, label, default in ((left, "A", defaults[0] if defaults else 0), (right, "B", defaults[1] if defaults else 0)):
        with column:
            folder = st.selectbox(f"Run {label}", runs, index=default, format_func=run_label, key=f"compare_run_{label}")
            try:
                configs = _load(str(folder), _stamp(folder)).configs
            except (RagError, OSError) as exc:
                st.error(f"Cannot read this run: {exc}")
                return
            same_run = bool(sides) and sides[0][0] == folder and len(configs) > 1  # default: two configs of one run
            config = st.selectbox(f"Config {label}", configs, index=1 if same_run else 0, key=f"compare_config_{label}_{folder.name}") if configs else None
            sides.append((folder, config))
    (run_a, config_a), (run_b, config_b) = sides
    if not st.button("Compare", icon=":material/compare_arrows:", type="primary"):
        st.caption("Deltas are B − A over the queries both runs share, with a paired permutation test and a bootstrap 95% CI.")
        return
    from rag.evaluate.compare import compare_runs

    try:
        with st.spinner("Comparing…"):
            result = compare_runs(run_a, run_b, config_a, config_b)
    except RagError as exc:
        st.error(exc.message + (f"\n\n**Fix:** {exc.hint}" if exc.hint else ""))
        return
    for warning in result["warnings"]:
        st.warning(warning)
    rows = comparison_rows(result)
    if not rows:
        st.info("The two runs share no metric to compare.")
        return
    st.caption(f"A = {result['a']['config']} ({Path(result['a']['run']).name}) · B = {result['b']['config']} ({Path(result['b']['run']).name}) · "
               f"{result['queries']['shared']} shared queries")
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={k: st.column_config.NumberColumn(k, format="%.4f") for k in ("A", "B", "delta B-A", "CI low", "CI high", "p")})
    deltas = [{"metric": row["metric"], "delta B-A": row["delta B-A"]} for row in rows if row["delta B-A"] is not None]
    if deltas:
        st.bar_chart(deltas, x="metric", y="delta B-A", horizontal=True)
