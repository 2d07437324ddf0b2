"""Human-readable tables for the CLI (rich)."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.ingest.report import IngestReport

if TYPE_CHECKING:
    from rag.types import Answer


def stderr_console() -> Console:
    return Console(stderr=True)


def print_ingest_report(report: IngestReport, index: str | os.PathLike[str]) -> None:
    console = Console()
    if report.repaired:
        console.print(
            f"[yellow]Repaired the index after an interrupted run:[/] {report.repaired['orphan_vectors_deleted']} orphan "
            f"vectors deleted, {report.repaired['vectors_restored']} vectors restored."
        )
    summary = Table(title=f"Index {index}", show_header=False, box=None, padding=(0, 2))
    summary.add_column("what")
    summary.add_column("count", justify="right")
    for label, value in (
        ("files new / changed / unchanged", f"{report.new} / {report.changed} / {report.unchanged}"),
        ("files removed / failed / skipped", f"{report.removed} / {len(report.failed)} / {len(report.skipped)}"),
        ("chunks added / removed", f"{report.chunks_added} / {report.chunks_removed}"),
        ("texts embedded", str(report.texts_embedded)),
        ("seconds", f"{report.seconds:.1f}"),
    ):
        summary.add_row(label, value)
    console.print(summary)
    console.print(
        f"{report.new} new, {report.changed} changed, {report.unchanged} unchanged, {report.removed} removed, "
        f"{len(report.failed)} failed"
    )
    for title, problems, style in (("Failed", report.failed, "red"), ("Skipped", report.skipped, "yellow"), ("Notes", report.notes, "dim")):
        if problems:
            table = Table(title=title, title_style=style, show_header=True, header_style="bold")
            table.add_column("file")
            table.add_column("reason")
            for problem in problems:
                table.add_row(problem.path, problem.reason)
            console.print(table)


def print_interrupted_ingest(index: str | os.PathLike[str], started: float) -> None:
    """After Ctrl-C: what this run committed (read back from the index) and how to resume."""
    from rag.index.backends import open_backend

    backend = open_backend(index)
    committed = []
    if backend.exists():
        catalog = backend.open_catalog()
        try:
            committed = [record for record in catalog.sources() if record.ingested_at >= started]
        finally:
            catalog.close()
    console = stderr_console()
    files = f"{len(committed)} file" + ("" if len(committed) == 1 else "s")
    chunks = sum(record.chunks for record in committed)
    console.print(
        f"[bold yellow]Interrupted.[/] {files} ({chunks} chunks) were committed to {escape(backend.location)} before the stop "
        "and are searchable; files not yet committed were left out.",
        highlight=False,
    )
    console.print(
        "Run the same command again to resume: committed files are skipped as unchanged, embeddings already computed "
        "are reused from the cache, and a half-written file is repaired first.",
        highlight=False,
    )


def print_sources(rows: list[dict[str, Any]]) -> None:
    console = Console()
    if not rows:
        console.print("The index is empty. Add documents with `rag ingest PATH`.")
        return
    table = Table(show_header=True, header_style="bold")
    with_groups = any(row.get("groups") for row in rows)  # the column only when permissions are in use
    for column in ("path", "type", "pages", "chunks", *(("groups",) if with_groups else ()), "ingested at"):
        table.add_column(column, justify="right" if column in ("pages", "chunks") else "left")
    for row in rows:
        stamp = dt.datetime.fromtimestamp(float(row["ingested_at"])).strftime("%Y-%m-%d %H:%M")
        pages = str(row["pages"]) if row["pages"] else "-"
        groups = (", ".join(row.get("groups") or []) or "everyone",) if with_groups else ()
        table.add_row(str(row["path"]), str(row["type"]), pages, str(row["chunks"]), *groups, stamp)
    console.print(table)
    console.print(f"{len(rows)} sources, {sum(int(r['chunks']) for r in rows)} chunks")


def print_trace(answer: Answer) -> None:
    trace = answer.trace
    console = Console()
    console.print("\n[bold]Retrieval trace[/]")
    standalone = trace.rewrite.standalone if trace.rewrite else None
    console.print(f"  searched: {trace.queries}  (standalone question: {standalone!r})", markup=False)
    for step, note in (trace.rewrite.notes if trace.rewrite else {}).items():
        console.print(f"  {step}: {note}", markup=False)
    if trace.filters:
        console.print(f"  filters: {trace.filters}", markup=False)
    table = Table(show_header=True, header_style="bold")
    for column in ("#", "source", "page", "dense", "rank", "bm25", "rank", "fused", "rerank"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for position, candidate in enumerate(trace.candidates, start=1):
        scores, ranks = candidate.scores, candidate.ranks
        table.add_row(
            str(position),
            candidate.source,
            str(candidate.page or "-"),
            _fmt(scores.get("dense")),
            str(ranks.get("dense", "-")),
            _fmt(scores.get("bm25")),
            str(ranks.get("bm25", "-")),
            _fmt(scores.get("fused")),
            _fmt(scores.get("rerank")),
        )
    console.print(table)
    context = trace.context
    console.print(f"  passages: {context.passages if context else None}, context tokens: {context.context_tokens if context else None}, "
                  f"retrieval {trace.retrieval_ms} ms, generation {trace.generation_ms} ms", markup=False)
    for dropped in trace.citations_dropped:
        console.print(f"  dropped citation [{dropped.marker}]: {dropped.reason}", markup=False)


def _fmt(value: "float | None") -> str:
    return "-" if value is None else f"{value:.3f}"


def print_retrieval_summary(summary: dict[str, Any]) -> None:
    console = Console()
    configs: dict[str, dict[str, Any]] = summary["configs"]
    names = sorted({m for c in configs.values() for m in c["metrics"]})
    table = Table(title=f"{summary['dataset']} ({summary['queries']} queries)", header_style="bold")
    table.add_column("config")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("index s", justify="right")
    table.add_column("search s", justify="right")
    for config_name, result in configs.items():
        metrics = result["metrics"]
        table.add_row(config_name, *(f"{metrics[n]:.4f}" for n in names), f"{result['index_seconds']:.1f}", f"{result['search_seconds']:.1f}")
    console.print(table)
    if summary.get("run_dir"):
        console.print(f"run written to {summary['run_dir']}")
