"""Options and output helpers shared by the CLI's commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

IndexOption = Annotated[  # a str: a URL such as postgresql://host/db must keep its "//" (a Path folds it)
    str,
    typer.Option(
        "--index", "-i", envvar="RAG_INDEX", show_default=True,
        help="Index folder (created on first ingest), or postgresql://user@host:port/db (docs/postgres.md).",
    ),
]
ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config file (default: $RAG_CONFIG, else ./rag.yaml if present)."),
]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override one setting, e.g. --set chunking.size=200 (repeatable)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
# the judge options `rag eval answers` and `rag eval meta` share
JudgeSeedOption = Annotated[int | None, typer.Option("--seed", help="LLM judge seed (repeat r uses seed + r).")]
JudgeCacheDirOption = Annotated[
    Path | None, typer.Option("--cache-dir", help="Folder of the judges' reply caches (default: the index folder).")
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Ask the LLM judge again instead of reusing cached replies (replies are still stored).")
]


def named_configs(paths: list[Path] | None, overrides: list[str] | None) -> dict[str, "object"]:
    """Configs for an evaluation run, named by file stem ("default" without files); repeated stems get a suffix."""
    from rag.config import load_config

    configs: dict[str, object] = {}
    for position, path in enumerate(paths or [None], start=1):
        name = path.stem if path is not None else "default"
        if name in configs:
            name = f"{name}-{position}"
        configs[name] = load_config(path, overrides or [])
    return configs


def emit(data: object, as_json: bool, render: Callable[[], object]) -> None:
    """JSON on stdout for --json, else the human rendering."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        render()
