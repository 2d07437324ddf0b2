"""The `rag` console script's entry point, kept to this one small module.

multiprocessing's spawn start method re-runs the parent's main script in every child it starts (as `__mp_main__`),
and the console script pip writes imports its entry point's module: were that `rag.cli.main`, every child of
`rag` (the ingest's reader) would import typer and the whole CLI before its first file. This module imports the
CLI only when the command runs.
"""

from __future__ import annotations


def run() -> None:
    """`rag ...`: the CLI in rag.cli.main."""
    from rag.cli.main import run as run_cli

    run_cli()
