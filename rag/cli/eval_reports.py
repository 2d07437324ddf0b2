"""`rag eval report` and `rag eval compare`: plain functions registered on `eval_app` in rag.cli.eval_cmd.

Heavy modules (numpy, matplotlib) are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rag.cli.options import JsonOption, emit

RunArgument = Annotated[Path, typer.Argument(help="Run folder written by `rag eval ... --out DIR`.", show_default=False)]


def report(
    run_dir: RunArgument,
    worst: Annotated[int, typer.Option("--worst", min=1, help="How many lowest-scoring queries to list per config.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Write RUN_DIR/report.html: one self-contained page with metadata, metric tables, plots and the worst queries.

    Example: rag eval report eval/runs/20250101T000000Z-retrieval
    """
    from rag.evaluate.report import write_report

    path = write_report(run_dir, worst)
    emit({"report": str(path)}, as_json, lambda: print(path))


def compare(
    run_a: RunArgument,
    run_b: Annotated[Optional[Path], typer.Argument(help="Second run folder (omit to compare two configs of RUN_A).", show_default=False)] = None,
    config_a: Annotated[Optional[str], typer.Option("--config-a", help="Config of RUN_A (needed when it has several).")] = None,
    config_b: Annotated[Optional[str], typer.Option("--config-b", help="Config of RUN_B, or of RUN_A when RUN_B is omitted.")] = None,
    permutations: Annotated[int, typer.Option("--permutations", min=100, help="Random sign flips of the permutation test (exact when n <= 16).")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutation test and the bootstrap.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Per-metric deltas (B - A) over the queries both sides have, with a paired permutation test and a bootstrap 95% CI.

    Examples: rag eval compare RUN_A RUN_B;  rag eval compare RUN --config-a bm25 --config-b hybrid
    """
    from rich.markup import escape

    from rag.cli.output import stderr_console
    from rag.evaluate.compare import compare_runs

    result = compare_runs(run_a, run_b, config_a, config_b, permutations=permutations, seed=seed)
    console = stderr_console()
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    emit(result, as_json, lambda: _print_comparison(result))


def _print_comparison(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    a, b = result["a"], result["b"]
    title = f"A = {escape(a['config'])} ({escape(Path(a['run']).name)})   B = {escape(b['config'])} ({escape(Path(b['run']).name)})"
    table = Table(title=title, header_style="bold")
    for column in ("metric", "n", "A", "B", "delta B-A", "95% CI", "p", "B better / worse / tied"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, m in result["metrics"].items():
        if m["delta"] is None:
            table.add_row(escape(metric), "0", "-", "-", "-", "-", "-", "-")
            continue
        significant = m["p_value"] < 0.05 and m["delta"] != 0
        style = ("green" if m["delta"] > 0 else "red") if significant else ""
        delta = f"[{style}]{m['delta']:+.4f}[/]" if style else f"{m['delta']:+.4f}"
        n = f"{m['n']}" + (f" ({m['skipped']} skipped)" if m["skipped"] else "")
        ci = "-" if m["ci_low"] is None else f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}]"  # no interval from one query
        table.add_row(escape(metric), n, f"{m['mean_a']:.4f}", f"{m['mean_b']:.4f}", delta,
                      ci, f"{m['p_value']:.4f}", f"{m['better']} / {m['worse']} / {m['tied']}")
    console = Console()
    console.print(table)
    queries = result["queries"]
    console.print(f"{queries['shared']} shared queries; p: paired sign-flip permutation test; colored deltas: p < 0.05", highlight=False)
