"""`rag keys create|list|revoke`: API keys for `rag serve`, stored hashed in the index folder."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from rag.cli.options import IndexOption, JsonOption, emit

keys_app = typer.Typer(
    help="API keys for `rag serve`: each has a name and reader groups; admin keys may also ingest and remove.",
    no_args_is_help=True,
)

DEFAULT_INDEX_HELP = "Index folder the keys belong to."


def reader_groups(value: str | None) -> tuple[str, ...]:
    from rag.errors import RagError
    from rag.retrieve.access import parse_groups

    try:
        return parse_groups(value)
    except ValueError as exc:
        raise RagError(f"--groups: {exc}", "pass names separated by commas, e.g. --groups staff,engineering") from None


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", "-n", help="Who or what uses the key, e.g. alice or support-bot.")],
    index: IndexOption,
    groups: Annotated[Optional[str], typer.Option("--groups", "-g", help="Reader groups, comma-separated, e.g. staff,engineering.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May read every document, ingest, remove and list sources.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once (only its hash is stored: copy it now).

    A key reads documents ingested without groups plus those sharing one of its groups; an admin key reads everything.

    Example: rag keys create --index .rag/demo --name alice --groups staff,engineering
    """
    from rag.serve.keys import open_key_store

    record, secret = open_key_store(index).create(name, reader_groups(groups), admin)
    if as_json:
        print(json.dumps({**record.to_json(), "key": secret}, indent=2))
        return
    print(secret)
    typer.echo(
        f"created key {record.name!r} (groups: {', '.join(record.groups) or 'none'}{'; admin' if admin else ''}); "
        "this is the only time it is shown",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    index: IndexOption,
    all_: Annotated[bool, typer.Option("--all", help="Also show revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List keys: name, groups, admin, created, revoked (never the key itself)."""
    from rag.serve.keys import open_key_store

    rows: list[dict[str, Any]] = [k.to_json() for k in open_key_store(index).list(include_revoked=all_)]

    def render() -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table("name", "key id", "groups", "admin", "created", "revoked")
        for row in rows:
            table.add_row(
                str(row["name"]), str(row["key_id"]), ", ".join(row["groups"]) or "-", "yes" if row["admin"] else "",
                _when(row["created_at"]), _when(row["revoked_at"]),
            )
        Console().print(table if rows else "no keys; create one with `rag keys create --name NAME --index DIR`")

    emit(rows, as_json, render)


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Name of the key to revoke.")],
    index: IndexOption,
) -> None:
    """Revoke a key; a running server refuses it from the next request on."""
    from rag.errors import RagError
    from rag.serve.keys import open_key_store

    if not open_key_store(index).revoke(name):
        raise RagError(f"no active key named {name!r}", "see `rag keys list --index DIR`")
    typer.echo(f"revoked key {name!r}", err=True)


def _when(timestamp: object) -> str:
    import datetime

    if not isinstance(timestamp, (int, float)):
        return ""
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
