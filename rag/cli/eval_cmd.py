"""`rag eval ...`: evaluation commands. Each command imports its heavy modules inside the function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.options import JsonOption, SetOption, emit, named_configs

eval_app = typer.Typer(help="Evaluate pipelines: retrieval metrics, answer metrics with judges, reports, comparisons.", no_args_is_help=True)


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    config: Annotated[
        Optional[list[Path]],
        typer.Option("--config", "-c", help="Pipeline config to evaluate (repeatable: one run compares them). Default: built-in defaults."),
    ] = None,
    set_: SetOption = None,
    split: Annotated[str, typer.Option(help="Which qrels file to use.")] = "test",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write a run folder here (configs, dataset fingerprint, per-query rows, summary).")] = None,
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Where corpus indexes are cached between runs.")] = Path(".rag/eval-cache"),
    as_json: JsonOption = False,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 and MAP (pytrec_eval) of each config on a BEIR dataset.

    The corpus is indexed once per dataset and indexing config and reused by later runs.
    Example: rag eval retrieval --dataset ../shared/datasets/scifact --config a.yaml --config b.yaml
    """
    from rag.cli.output import print_retrieval_summary, stderr_console
    from rag.cli.progress import RichProgress
    from rag.evaluate.datasets import load_beir
    from rag.evaluate.retrieval import evaluate_retrieval

    data = load_beir(dataset, split)
    configs = named_configs(config, set_)
    with RichProgress(stderr_console()) as progress:
        summary = evaluate_retrieval(data, configs, cache_dir, out, progress)
    emit(summary, as_json, lambda: print_retrieval_summary(summary))


from rag.cli.eval_answers import answers  # noqa: E402  (sub-commands live in their own modules)

eval_app.command("answers")(answers)

from rag.cli.eval_reports import compare as eval_compare  # noqa: E402
from rag.cli.eval_reports import report as eval_report  # noqa: E402

eval_app.command("report")(eval_report)
eval_app.command("compare")(eval_compare)

from rag.cli.eval_meta import meta  # noqa: E402

eval_app.command("meta")(meta)
