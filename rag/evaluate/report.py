"""`rag eval report`: one self-contained HTML file for a run folder (see rag.evaluate.runs).

Works for retrieval runs and answer runs alike. A metric value in summary.json is either a plain number
(retrieval) or an object {"mean", "ci_low", "ci_high", "n", "failures"} (answers); per-query metric values
may be None (a judge failure), which are skipped, never counted as 0.

Everything taken from the run (queries, answers, passages, ids, config names) is HTML-escaped: documents
may contain markup or instructions. Plots are inline PNG data URIs drawn by matplotlib (Agg backend);
the file references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluate.runs import QUERY_KEY, read_rows

# The metric the worst-queries section sorts by: the first of these a run has, else its first metric.
PRIMARY_METRICS = ("nDCG@10", "faithfulness", "correctness", "answer_correctness")
PASSAGE_CHARS = 300
ANSWER_CHARS = 2000


@dataclass
class Run:
    folder: Path
    meta: dict[str, Any]
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    configs: list[str] = field(default_factory=list)
    _per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind") or ("answers" if any("answer" in r for r in self.rows) else "retrieval"))

    @property
    def fingerprint(self) -> str | None:
        dataset = self.meta.get("dataset")
        return dataset.get("fingerprint") if isinstance(dataset, dict) else None

    @property
    def dataset_name(self) -> str | None:
        dataset = self.meta.get("dataset")
        if isinstance(dataset, dict):
            return dataset.get("name")
        return self.summary.get("dataset") if isinstance(self.summary.get("dataset"), str) else None

    @property
    def approximation(self) -> bool:
        judge = self.summary.get("judge")
        return bool(isinstance(judge, dict) and judge.get("approximation"))

    def metric_names(self) -> list[str]:
        """Metric names in the order the summary lists them, then any only seen in per-query rows."""
        names: list[str] = []
        for stats in summary_metrics(self).values():
            names += [name for name in stats if name not in names]
        for row in self.rows:
            names += [name for name in (row.get("metrics") or {}) if name not in names]
        return names

    def per_query(self, config: str) -> dict[str, dict[str, float]]:
        """{metric: {query_id: value}} for one config; None values skipped, repeated rows averaged."""
        if config not in self._per_query:
            self._per_query[config] = self._collect(config)
        return self._per_query[config]

    def _collect(self, config: str) -> dict[str, dict[str, float]]:
        collected: dict[str, dict[str, list[float]]] = {}
        for row in self.rows:
            if row.get("config") != config:
                continue
            for name, value in (row.get("metrics") or {}).items():
                number = _number(value)
                if number is not None:
                    collected.setdefault(name, {}).setdefault(row[QUERY_KEY], []).append(number)
        return {name: {qid: statistics.fmean(vals) for qid, vals in by_query.items()} for name, by_query in collected.items()}

    def rows_for(self, config: str) -> dict[str, dict[str, Any]]:
        """The first per-query row of each query for one config."""
        rows: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            if row.get("config") == config:
                rows.setdefault(row[QUERY_KEY], row)
        return rows


def load_run(folder: Path) -> Run:
    """Read a run folder; a missing folder or file is a RagError with the fix spelled out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RagError(f"run folder {folder} not found", "pass a folder written by `rag eval ... --out DIR`")
    meta = _read_json(folder / "run.json", required=False) or {}
    summary = _read_json(folder / "summary.json", required=False) or {}
    rows_path = folder / "per_query.jsonl"
    rows = read_rows(rows_path) if rows_path.exists() else []
    if not meta and not summary and not rows:
        raise RagError(f"{folder} holds no run (run.json, summary.json, per_query.jsonl)", "pass a folder written by `rag eval ... --out DIR`")
    configs: list[str] = []
    for name in list((summary.get("configs") or {}).keys()) + list(meta.get("configs") or []) + [str(r.get("config")) for r in rows]:
        if name not in configs and name != "None":
            configs.append(name)
    return Run(folder, meta, summary, rows, configs)


def summary_metrics(run: Run) -> dict[str, dict[str, dict[str, Any]]]:
    """{config: {metric: {"mean", "ci_low", "ci_high", "n", "failures"}}} from summary.json (numbers or objects);
    a config the summary lacks gets means computed from its per-query rows."""
    result: dict[str, dict[str, dict[str, Any]]] = {}
    summary_configs = run.summary.get("configs") or {}
    for config in run.configs:
        entry = summary_configs.get(config)
        metrics = entry.get("metrics") if isinstance(entry, dict) else None
        stats: dict[str, dict[str, Any]] = {}
        if isinstance(metrics, dict):
            for name, value in metrics.items():
                if isinstance(value, dict):
                    stats[name] = {"mean": _number(value.get("mean")), "ci_low": _number(value.get("ci_low")), "ci_high": _number(value.get("ci_high")),
                                   "n": value.get("n"), "failures": value.get("failures")}
                else:
                    stats[name] = {"mean": _number(value), "ci_low": None, "ci_high": None, "n": None, "failures": None}
        else:
            for name, values in run.per_query(config).items():
                stats[name] = {"mean": statistics.fmean(values.values()) if values else None, "ci_low": None, "ci_high": None, "n": len(values), "failures": None}
        result[config] = stats
    return result


def primary_metric(names: list[str]) -> str | None:
    return next((name for name in PRIMARY_METRICS if name in names), names[0] if names else None)


def worst_queries(run: Run, config: str, metric: str, limit: int = 10) -> list[tuple[float, dict[str, Any]]]:
    """The `limit` queries of one config with the lowest `metric` (ties by query id); None values skipped."""
    values = run.per_query(config).get(metric, {})
    rows = run.rows_for(config)
    ranked = sorted(values.items(), key=lambda kv: (kv[1], kv[0]))[:limit]
    return [(value, rows[qid]) for qid, value in ranked if qid in rows]


def write_report(folder: Path, worst: int = 10) -> Path:
    """Write `folder/report.html` and return its path."""
    run = load_run(folder)
    path = Path(folder) / "report.html"
    path.write_text(render_report(run, worst), encoding="utf-8")
    return path


# --- HTML -----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .55rem;vertical-align:top;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.7rem 1rem;margin:1rem 0;border-radius:4px;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{margin:0}.plots img{max-width:520px;border:1px solid #eee}
.muted{color:#777}.rel{font-weight:700;color:#176b2c}pre{background:#f8f8f8;padding:.6rem;overflow:auto;font-size:.8rem}
.passage{margin:.25rem 0;font-size:.85rem}.answer{white-space:pre-wrap}details{margin:.3rem 0}
"""


def render_report(run: Run, worst: int = 10) -> str:
    stats = summary_metrics(run)
    names = run.metric_names()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(run.kind)} run {_e(run.folder.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(run.kind.capitalize())} evaluation: {_e(run.folder.name)}</h1>",
    ]
    if run.approximation:
        judge = run.summary.get("judge") or {}
        which = "the citation metrics" if judge.get("ragas") else "these answer metrics"
        parts.append(
            f'<div class="banner" id="approximation-banner">Approximation: {which} come from an offline judge '
            f"({_e(judge.get('kind', 'unknown'))}) that needs no LLM. They approximate, and may disagree with, an LLM judge.</div>"
        )
    parts += _metadata(run)
    parts += _metrics_table(run, stats, names)
    parts += _charts(run, names)
    parts += _worst_section(run, names, worst)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _metadata(run: Run) -> list[str]:
    meta, dataset = run.meta, run.meta.get("dataset") if isinstance(run.meta.get("dataset"), dict) else {}
    code = meta.get("code") if isinstance(meta.get("code"), dict) else {}
    rows = [
        ("kind", run.kind),
        ("dataset", dataset.get("name") or run.dataset_name or "unknown"),
        ("dataset fingerprint", dataset.get("fingerprint") or "unknown"),
    ]
    rows += [(f"dataset {key}", value) for key, value in dataset.items() if key not in ("name", "fingerprint")]
    rows += [
        ("code version", " ".join(f"{key}={value}" for key, value in code.items()) or "unknown"),
        ("started (UTC)", meta.get("started", "unknown")),
        ("finished (UTC)", meta.get("finished", "unfinished")),
        ("configs", ", ".join(run.configs)),
        ("per-query rows", len(run.rows)),
    ]
    judge = run.summary.get("judge")
    if isinstance(judge, dict):
        rows.append(("judge", ", ".join(f"{key}={value}" for key, value in judge.items())))
    out = ["<h2>Run</h2>", '<table class="meta">']
    out += [f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>" for label, value in rows]
    out.append("</table>")
    for config in run.configs:
        path = run.folder / "configs" / f"{config}.json"
        extra = {k: v for k, v in ((run.summary.get("configs") or {}).get(config) or {}).items() if k != "metrics"}
        body = path.read_text(encoding="utf-8") if path.exists() else "(config file missing)"
        info = f" <span class='muted'>{_e(json.dumps(extra))}</span>" if extra else ""
        out.append(f"<details><summary>config <b>{_e(config)}</b>{info}</summary><pre>{_e(body)}</pre></details>")
    return out


def _metrics_table(run: Run, stats: dict[str, dict[str, dict[str, Any]]], names: list[str]) -> list[str]:
    has_ci = any(s.get("ci_low") is not None for per in stats.values() for s in per.values())
    out = ["<h2>Mean metrics per config</h2>"]
    if has_ci:
        out.append('<p class="muted">Brackets: 95% confidence interval. n: queries scored; failures: judge failures (not counted as 0).</p>')
    out.append('<table id="metrics"><tr><th>config</th>' + "".join(f"<th>{_e(name)}</th>" for name in names) + "</tr>")
    for config in run.configs:
        cells = []
        for name in names:
            s = stats.get(config, {}).get(name)
            if not s or s.get("mean") is None:
                cells.append('<td class="num muted">–</td>')
                continue
            text = f"{s['mean']:.4f}"
            if s.get("ci_low") is not None and s.get("ci_high") is not None:
                text += f" <span class='muted'>[{s['ci_low']:.4f}, {s['ci_high']:.4f}]</span>"
            if s.get("n") is not None or s.get("failures"):
                text += f"<br><span class='muted'>n={_e(s.get('n'))}" + (f", failures={_e(s['failures'])}" if s.get("failures") else "") + "</span>"
            cells.append(f'<td class="num" data-config="{_e(config)}" data-metric="{_e(name)}" data-value="{s["mean"]!r}">{text}</td>')
        out.append(f"<tr><th>{_e(config)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return out


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str  # "bar": the metric's mean per config; "dist": its per-query values per config
    metric: str
    caption: str
    png: bytes


def charts(run: Run, names: list[str] | None = None) -> list[Chart]:
    """The report's plots as PNGs (the chat UI's evaluation page shows the same ones): bars first, then distributions."""
    stats = summary_metrics(run)
    names = run.metric_names() if names is None else names
    result = [Chart("bar", name, f"{name} per config", _bar_chart(run.configs, stats, name)) for name in names]
    for name in names:
        values = {config: list(run.per_query(config).get(name, {}).values()) for config in run.configs}
        if any(values.values()):
            result.append(Chart("dist", name, f"{name}: per-query values", _distribution(values, name)))
    return result


def _charts(run: Run, names: list[str]) -> list[str]:
    drawn = charts(run, names)
    out = ["<h2>Metrics per config</h2>", '<div class="plots">']
    out += [_figure(c.png, c.caption, c.kind, c.metric) for c in drawn if c.kind == "bar"]
    out += ["</div>", "<h2>Per-query distributions</h2>", '<div class="plots">']
    out += [_figure(c.png, c.caption, c.kind, c.metric) for c in drawn if c.kind == "dist"]
    out.append("</div>")
    return out


def _figure(png: bytes, caption: str, kind: str, metric: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="{kind}" data-metric="{_e(metric)}"><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption class='muted'>{_e(caption)}</figcaption></figure>")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _bar_chart(configs: list[str], stats: dict[str, dict[str, dict[str, Any]]], name: str) -> bytes:
    plt = _pyplot()
    with plt.rc_context({"text.parse_math": False, "text.usetex": False}):
        means = [(stats.get(c, {}).get(name) or {}).get("mean") for c in configs]
        heights = [m if m is not None else 0.0 for m in means]
        lows, highs = [], []
        for config, mean in zip(configs, means):
            s = stats.get(config, {}).get(name) or {}
            ok = mean is not None and s.get("ci_low") is not None and s.get("ci_high") is not None
            lows.append(max(mean - s["ci_low"], 0.0) if ok else 0.0)
            highs.append(max(s["ci_high"] - mean, 0.0) if ok else 0.0)
        fig, ax = plt.subplots(figsize=(max(3.2, 1.1 * len(configs) + 1.5), 3.0))
        positions = list(range(len(configs)))
        has_ci = any(lows) or any(highs)
        ax.bar(positions, heights, color="#4c78a8", yerr=[lows, highs] if has_ci else None, capsize=5 if has_ci else 0)
        for x, mean in zip(positions, means):
            ax.text(x, 0.01 if mean is None else mean, "n/a" if mean is None else f"{mean:.3f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(positions, [c[:24] for c in configs], rotation=20 if len(configs) > 3 else 0, ha="right" if len(configs) > 3 else "center")
        ax.set_title(name + (" (95% CI)" if has_ci else ""))
        top = max([h + e for h, e in zip(heights, highs)] + [1.0])
        ax.set_ylim(min(0.0, min(heights)), top * 1.08)
        return _png(fig)


def _distribution(values: dict[str, list[float]], name: str) -> bytes:
    import numpy as np

    plt = _pyplot()
    with plt.rc_context({"text.parse_math": False, "text.usetex": False}):
        configs = list(values)
        fig, ax = plt.subplots(figsize=(max(3.2, 1.1 * len(configs) + 1.5), 3.0))
        data = [values[c] if values[c] else [np.nan] for c in configs]
        ax.boxplot(data, showmeans=True)
        rng = np.random.default_rng(0)
        for position, points in enumerate(data, start=1):
            ax.scatter(position + rng.uniform(-0.12, 0.12, len(points)), points, s=8, alpha=0.45, color="#e45756", zorder=3)
        ax.set_xticks(range(1, len(configs) + 1), [f"{c[:24]}\n(n={len(values[c])})" for c in configs])
        ax.set_title(f"{name}: per query")
        return _png(fig)


def _worst_section(run: Run, names: list[str], limit: int) -> list[str]:
    metric = primary_metric(names)
    out = ["<h2>Worst queries</h2>"]
    if metric is None:
        return out + ["<p class='muted'>No per-query metrics in this run.</p>"]
    out.append(f"<p class='muted'>The {limit} lowest-scoring queries of each config by <b>{_e(metric)}</b> (queries the metric could not score are left out).</p>")
    for config in run.configs:
        worst = worst_queries(run, config, metric, limit)
        out.append(f"<h3>{_e(config)}</h3>")
        if not worst:
            out.append("<p class='muted'>No scored queries.</p>")
            continue
        out.append(f'<table class="worst" data-config="{_e(config)}"><tr><th>query</th><th>{_e(metric)}</th><th>other metrics</th><th>what was retrieved</th></tr>')
        for value, row in worst:
            out.append(_worst_row(row, metric, value))
        out.append("</table>")
    return out


def _worst_row(row: dict[str, Any], metric: str, value: float) -> str:
    question = row.get("question", row.get("query", ""))
    others = ", ".join(f"{k}={_fmt(v)}" for k, v in (row.get("metrics") or {}).items() if k != metric)
    query_cell = f"<b>{_e(row.get(QUERY_KEY))}</b><br>{_e(question)}"
    if "answer" in row:
        query_cell += f"<details open><summary>answer</summary><div class='answer'>{_e(_short(row.get('answer'), ANSWER_CHARS))}</div></details>"
        if row.get("references"):
            refs = "".join(f"<li>{_e(_short(ref, PASSAGE_CHARS))}</li>" for ref in _as_list(row.get("references")))
            query_cell += f"<details><summary>references</summary><ul>{refs}</ul></details>"
        if row.get("citations"):
            query_cell += f"<div class='muted'>citations: {_e(json.dumps(row.get('citations'), default=str)[:PASSAGE_CHARS])}</div>"
    if isinstance(row.get("passages"), list):
        retrieved = "".join(
            f"<div class='passage'><b>[{_e(p.get('number', i))}]</b> <i>{_e(p.get('source', ''))}</i>: {_e(_short(p.get('text', ''), PASSAGE_CHARS))}</div>"
            if isinstance(p, dict) else f"<div class='passage'>{_e(_short(p, PASSAGE_CHARS))}</div>"
            for i, p in enumerate(row["passages"], start=1)
        ) or "<span class='muted'>nothing</span>"
    else:
        relevant = {str(doc) for doc in _as_list(row.get("relevant"))}
        ids = [str(doc) for doc in _as_list(row.get("retrieved"))]
        retrieved = ", ".join(f"<span class='rel'>{_e(doc)}</span>" if doc in relevant else _e(doc) for doc in ids) or "<span class='muted'>nothing</span>"
        if relevant:
            retrieved += f"<br><span class='muted'>relevant: {_e(', '.join(sorted(relevant)))}</span>"
    return f"<tr><td>{query_cell}</td><td class='num'>{value:.4f}</td><td class='muted'>{_e(others)}</td><td>{retrieved}</td></tr>"


# --- helpers --------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.3f}"


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _number(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("mean")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if number != number else number  # NaN counts as missing


def _read_json(path: Path, required: bool = True) -> dict[str, Any] | None:
    if not path.exists():
        if required:
            raise RagError(f"{path} not found", "pass a folder written by `rag eval ... --out DIR`")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RagError(f"{path} is not valid JSON: {exc.msg}", "the run may have been interrupted; re-run it") from exc
    return data if isinstance(data, dict) else {}
