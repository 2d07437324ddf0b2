"""Human-readable tables for the CLI (rich)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rag.ingest.report import IngestReport


def stderr_console() -> Console:
    return Console(stderr=True)


def print_ingest_report(report: IngestReport, index: Path) -> None:
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


def print_sources(rows: list[dict[str, object]]) -> None:
    console = Console()
    if not rows:
        console.print("The index is empty. Add documents with `rag ingest PATH`.")
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("path", "type", "pages", "chunks", "ingested at"):
        table.add_column(column, justify="right" if column in ("pages", "chunks") else "left")
    for row in rows:
        stamp = dt.datetime.fromtimestamp(float(row["ingested_at"])).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
        pages = str(row["pages"]) if row["pages"] else "-"
        table.add_row(str(row["path"]), str(row["type"]), pages, str(row["chunks"]), stamp)
    console.print(table)
    console.print(f"{len(rows)} sources, {sum(int(r['chunks']) for r in rows)} chunks")  # type: ignore[call-overload]
