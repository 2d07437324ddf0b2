"""`rag eval answers`: answer metrics of one or more pipeline configs on a JSONL answer set.

Registered on the `eval` sub-app in rag/cli/eval_cmd.py:
    eval_app.command("answers")(answers)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.options import IndexOption, JsonOption, JudgeCacheDirOption, JudgeSeedOption, NoCacheOption, SetOption, emit, named_configs


def answers(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="JSONL answer set: {id, question, answers[], sources[]} per line.")],
    index: IndexOption = ".rag/index",
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", "-c", help="Pipeline config to evaluate (repeatable: one run compares them). Default: built-in defaults."),
    ] = None,
    set_: SetOption = None,
    judge: Annotated[str, typer.Option("--judge", help="offline (lexical+embedding, an approximation), lexical, embedding, or llm (the llm.* settings).")] = "offline",
    backend: Annotated[str, typer.Option("--backend", help="builtin, or ragas: faithfulness, relevance, context precision/recall/utility and correctness scored by ragas against the llm.* endpoint (pip install -e \".[ragas]\").")] = "builtin",
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Judge every answer N times; the summary gives mean and 95% CI over all repeats.")] = 1,
    seed: JudgeSeedOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write a run folder here (configs, dataset fingerprint, per-question rows, summary).")] = None,
    cache_dir: JudgeCacheDirOption = None,
    no_cache: NoCacheOption = False,
    as_json: JsonOption = False,
) -> None:
    """Faithfulness, relevance, context precision/recall/utility, citation precision/recall, correctness and refusals.

    Each metric is reported as a mean with a 95% bootstrap confidence interval over questions; judge
    failures are counted, never turned into numbers. Offline judges are labelled approximations.
    Example: rag eval answers --dataset eval/gold/sample.jsonl --index .rag/demo --out eval/runs
    """
    from rag.cli.output import stderr_console
    from rag.cli.progress import RichProgress
    from rag.errors import RagError
    from rag.evaluate.answers import evaluate_answers, load_answer_set

    if judge not in ("offline", "lexical", "embedding", "llm"):
        raise RagError(f"unknown judge {judge!r}", "use --judge offline, lexical, embedding or llm")
    data = load_answer_set(dataset)
    configs = named_configs(config, set_)
    with RichProgress(stderr_console()) as progress:
        summary = evaluate_answers(data, configs, index, judge, out, progress, repeats, cache_dir, seed, no_cache, backend)
    emit(summary, as_json, lambda: print_answers_summary(summary))


def print_answers_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    judge = summary.get("judge", {})
    title = f"{summary['dataset']} ({summary['questions']} questions, judge: {judge.get('kind')}"
    title += f" {judge['model']})" if judge.get("model") else ")"
    for name, result in summary["configs"].items():
        table = Table(title=f"{title} - {name}", header_style="bold")
        for column in ("metric", "mean", "95% CI", "n", "failures"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for metric, entry in result["metrics"].items():
            mean = "-" if entry["mean"] is None else f"{entry['mean']:.3f}"
            ci = "-" if entry["ci_low"] is None else f"{entry['ci_low']:.3f}-{entry['ci_high']:.3f}"
            table.add_row(metric, mean, ci, str(entry["n"]), str(entry["failures"]))
        console.print(table)
    if judge.get("ragas"):
        console.print(f"ragas {judge['ragas']['ragas_version']} scored: {', '.join(judge['ragas']['metrics'])} (model {judge['ragas']['model']})")
    if judge.get("approximation"):
        console.print(f"[yellow]{'citation' if judge.get('ragas') else 'judged'} metrics come from an offline judge ({judge.get('kind')}): an approximation, not an LLM verdict[/]")
    if summary.get("run_dir"):
        console.print(f"run written to {summary['run_dir']}")
