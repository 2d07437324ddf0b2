"""`rag index copy SRC DST`: move an index between locations and backends without embedding again."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from rag.cli.options import JsonOption, emit

index_app = typer.Typer(help="Whole-index operations: copy an index to another location or backend.", no_args_is_help=True)


@index_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="The index to copy: a folder or a URL such as postgresql://host/db.")],
    target: Annotated[str, typer.Argument(help="Where to copy it: a folder or a URL (created if needed; its sources with the same paths are replaced).")],
    as_json: JsonOption = False,
) -> None:
    """Copy every source, document, chunk, group, tag and vector of an index into another, without embedding again.

    The target gets the source index's recorded settings (embedding model, chunking, BM25). API keys come along
    (as their hashes: the same keys work on the target; revoked ones stay revoked).

    Example: rag index copy .rag/demo postgresql://rag@db.example.com:5432/rag
    """
    from rag.cli.output import stderr_console
    from rag.cli.progress import RichProgress
    from rag.index.copy import copy_index

    with RichProgress(stderr_console()) as progress:
        report = copy_index(source, target, progress)
    emit(
        dataclasses.asdict(report),
        as_json,
        lambda: print(f"copied {report.sources} sources ({report.chunks} chunks) and {report.keys} API keys from {report.source} "
                      f"to {report.target}; {report.texts_embedded} texts embedded"),
    )
