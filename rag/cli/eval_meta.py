"""`rag eval meta`: accuracy and agreement of faithfulness judges on labelled claim/evidence pairs.

Registered on the `eval` sub-app in rag/cli/eval_cmd.py:
    from rag.cli.eval_meta import meta; eval_app.command("meta")(meta)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.options import IndexOption, JsonOption, JudgeCacheDirOption, JudgeSeedOption, NoCacheOption, SetOption, emit

JUDGES = ("offline", "lexical", "embedding", "llm")


def meta(
    labels: Annotated[Path, typer.Option("--labels", "-l", help="JSONL of {id, claim, evidence, label}; label SUPPORT, CONTRADICT or NOT_ENOUGH_INFO.")],
    dataset: Annotated[Path | None, typer.Option("--dataset", "-d", help="Dataset folder that label lines point into ({query_id, doc_id, label} with a BEIR folder; original SciFact claims with its corpus).")] = None,
    judge: Annotated[
        list[str] | None,
        typer.Option("--judge", help="offline, lexical, embedding or llm (repeatable: one run compares judges). Default: offline."),
    ] = None,
    index: IndexOption = ".rag/index",
    set_: SetOption = None,
    seed: JudgeSeedOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write a run folder here (judges, labels fingerprint, per-item verdicts, summary).")] = None,
    cache_dir: JudgeCacheDirOption = None,
    no_cache: NoCacheOption = False,
    as_json: JsonOption = False,
) -> None:
    """Judge accuracy (95% Wilson CI), precision/recall/F1 of "supported", confusion by gold label, judge agreement.

    A judge's verdict counts as correct when "supported" matches "gold label is SUPPORT"; CONTRADICT and
    NOT_ENOUGH_INFO are both "not supported". Judge failures are excluded and counted. The embedding and
    offline judges use the embedding model of the index given with --index.
    Example: rag eval meta --labels eval/gold/judge_labels.jsonl --judge lexical --judge offline --index .rag/demo
    SciFact: rag eval meta --labels eval/gold/scifact_judge_labels.jsonl --dataset ../shared/datasets/scifact --index .rag/demo
    """
    from rag.cli.output import stderr_console
    from rag.cli.progress import RichProgress
    from rag.config import load_config
    from rag.errors import RagError
    from rag.evaluate.judges import DEFAULT_SEED, build_judge
    from rag.evaluate.meta import evaluate_judges, load_labels

    kinds = list(dict.fromkeys(judge or ["offline"]))
    for kind in kinds:
        if kind not in JUDGES:
            raise RagError(f"unknown judge {kind!r}", "use --judge offline, lexical, embedding or llm")
    data = load_labels(labels, dataset)
    config = load_config(None, set_ or [])
    from rag.index.backends import work_folder

    cache_path = (cache_dir or work_folder(index)) / "judge-cache.sqlite"
    opened = None
    judges = {}
    try:
        embedder = None
        if any(kind in ("offline", "embedding") for kind in kinds):
            from rag.index.store import Index

            opened = Index.open(index, config)
            embedder = opened.query_embedder
        for kind in kinds:
            judges[kind] = build_judge(kind, config, embedder, cache_path, seed if seed is not None else DEFAULT_SEED, not no_cache)
        with RichProgress(stderr_console()) as progress:
            summary = evaluate_judges(data, judges, out, progress)
    finally:
        for built in judges.values():
            if hasattr(built, "close"):
                built.close()
        if opened is not None:
            opened.close()
    emit(summary, as_json, lambda: print_meta_summary(summary))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_meta_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    gold = ", ".join(f"{label} {n}" for label, n in summary["labels"].items())
    table = Table(title=f"{summary['dataset']} ({summary['items']} pairs: {gold})", header_style="bold")
    for column in ("judge", "accuracy", "95% CI", "S-vs-C acc.", "precision", "recall", "F1", "judged", "failures"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    approximate = []
    for name, result in summary["judges"].items():
        acc, sc = result["accuracy"], result["accuracy_support_vs_contradict"]
        ci = "-" if acc["ci_low"] is None else f"{acc['ci_low']:.3f}-{acc['ci_high']:.3f}"
        table.add_row(name, _fmt(acc["mean"]), ci, _fmt(sc["mean"]), _fmt(result["precision"]), _fmt(result["recall"]),
                      _fmt(result["f1"]), str(result["judged"]), str(result["failures"]))
        if result["judge"].get("approximation"):
            approximate.append(name)
    console.print(table)
    confusion = Table(title="verdicts by gold label (supported / not supported / failed)", header_style="bold")
    confusion.add_column("judge")
    labels = list(summary["labels"])
    for label in labels:
        confusion.add_column(label, justify="right")
    for name, result in summary["judges"].items():
        cells = result["confusion"]
        confusion.add_row(name, *(f"{cells[l]['supported']} / {cells[l]['not_supported']} / {cells[l]['failed']}" for l in labels))
    console.print(confusion)
    if summary["agreement"]:
        agree = Table(title="judge agreement", header_style="bold")
        for column in ("judges", "agreement", "Cohen's kappa", "n"):
            agree.add_column(column, justify="left" if column == "judges" else "right")
        for pair in summary["agreement"]:
            agree.add_row(" vs ".join(pair["judges"]), _fmt(pair["agreement"]), _fmt(pair["kappa"]), str(pair["n"]))
        console.print(agree)
    if approximate:
        console.print(f"[yellow]{', '.join(approximate)}: offline judges, approximations, not LLM verdicts[/]")
    if summary.get("run_dir"):
        console.print(f"run written to {summary['run_dir']}")
