"""`rag`: ingest documents, inspect and maintain an index.

Exit codes: 0 success; 1 some files failed (the rest were ingested); 2 bad usage or configuration (a path
that does not exist, an unknown filter value, filters that keep no source: nothing was done); 3 a runtime
problem that stopped the command (missing index, unreachable endpoint, index busy); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

from rag.cli.options import ConfigOption, IndexOption, JsonOption, SetOption, emit
from rag.errors import RagError, UsageError
from rag.core.file_types import FILE_TYPES

if TYPE_CHECKING:
    from rag.config import RagConfig
    from rag.pipeline import RagPipeline
    from rag.ingest.worker import ReaderChild
    from rag.retrieve.filters import Filters

EXIT_FILES_FAILED = 1
EXIT_CONFIG = 2
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class Interrupted(Exception):
    """Raised by a command that caught Ctrl-C and has said what was kept: exit 130 without another word."""

app = typer.Typer(
    name="rag",
    help="Question answering over your own documents, offline. Start with: rag ingest data/ --index .rag/demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

DEFAULT_INDEX = ".rag/index"

_state = {"debug": False, "exit_at_once": False}


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """Offline-first RAG: ingest PDF, DOCX, HTML, Markdown, text and JSON Lines into Chroma + BM25.

    Settings come from built-in defaults, a YAML file, RAG_SECTION__KEY environment variables and
    --set section.key=value, in rising order of precedence; `rag config` shows the result.
    """
    _state["debug"] = debug


def _config(config_path: Path | None, overrides: list[str] | None) -> RagConfig:
    from rag.config import load_config, resolve_config_path

    return load_config(resolve_config_path(config_path), overrides or [])


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files or folders to ingest; folders are walked recursively.")],
    index: IndexOption = DEFAULT_INDEX,
    config: ConfigOption = None,
    set_: SetOption = None,
    as_json: JsonOption = False,
    tag: Annotated[
        Optional[list[str]],
        typer.Option("--tag", "-t", help="Label these sources for retrieval filters (repeatable); omitted = keep existing tags."),
    ] = None,
    groups: Annotated[
        Optional[str],
        typer.Option(
            "--groups",
            "-g",
            help="Only API keys in one of these groups (comma-separated) may read these documents through `rag serve`. "
            "Omitted: the ingest.groups glob mapping, else each file keeps its groups (new files: every key).",
        ),
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="Make these documents readable by every API key (clears their groups).")] = False,
    ray: Annotated[
        Optional[str],
        typer.Option(
            "--ray",
            metavar="auto|ADDRESS",
            help="Load, chunk and embed on a Ray cluster's workers (the `ray` extra; docs/ray.md): auto = the cluster "
            "this machine belongs to, or the head's HOST:PORT. Every node must read the files at the same path.",
        ),
    ] = None,
) -> None:
    """Add or update documents in an index (incremental).

    Unchanged files cost nothing; changed files replace their chunks; files deleted from an
    ingested folder are removed. Exit code 1 if any file failed (the others are still ingested);
    2, with nothing done, if a path does not exist. Ctrl-C keeps every file committed so far:
    run the same command again to resume.

    Example: rag ingest data/ --index .rag/demo; rag ingest data/hr --index .rag/demo --groups hr
    """
    from contextlib import nullcontext

    from rag.ingest.worker import ReaderChild

    # the reader's child boots and imports what reading needs while this process loads its config, opens the
    # index and scans (Ray's workers read instead): the Ingestor adopts it, or it is killed on the way out
    with ReaderChild.spawn() if ray is None else nullcontext() as reader_child:
        _ingest(paths, index, config, set_, as_json, tag, groups, public, ray, reader_child)


def _ingest(
    paths: list[str], index: str, config: Optional[Path], set_: Optional[list[str]], as_json: bool, tag: Optional[list[str]],
    groups: Optional[str], public: bool, ray: Optional[str], reader_child: "ReaderChild | None",
) -> None:
    """`rag ingest`, once its reader's child is started."""
    from rag.cli.output import print_ingest_report, print_interrupted_ingest, stderr_console
    from rag.cli.progress import RichProgress
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor

    from rag.cli.keys_cmd import reader_groups

    settings = _config(config, set_)
    if public and groups:
        raise RagError("--groups and --public contradict each other", "pass one of them")
    chosen = [] if public else (list(reader_groups(groups)) if groups is not None else None)
    missing = [given for given in paths if not Path(given).exists()]
    if missing:  # before the index is opened: a typo must not create an empty index
        raise UsageError(
            f"no such file or folder: {', '.join(missing)}",
            "check the path (relative to the current folder); nothing was ingested and no index was created or changed",
        )
    if ray is not None:  # before the index is opened: an unreachable cluster must not create or lock an index
        from rag.ingest.ray_ingest import connect

        connect(ray)
    started = time.time()
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        with Index.open(index, settings, writable=True) as opened, RichProgress(stderr_console()) as progress:
            if ray is not None:
                from rag.ingest.ray_ingest import RayIngestor

                report = RayIngestor(opened, ray, progress, tags=tag, groups=chosen).ingest(paths)
            else:
                report = Ingestor(opened, progress, tags=tag, groups=chosen, reader_child=reader_child).ingest(paths)
    except KeyboardInterrupt:
        print_interrupted_ingest(index, started)
        raise Interrupted() from None
    emit(report.to_json(), as_json, lambda: print_ingest_report(report, opened.location))
    _state["exit_at_once"] = ray is None  # the index is closed and the report printed (Ray shuts down at exit)
    raise typer.Exit(report.exit_code)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a service manager, `kill`) stops an ingest as Ctrl-C does: finished files are kept and listed."""
    raise KeyboardInterrupt


@app.command()
def remove(
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(help="Indexed files to remove as `rag sources` lists them (or as given at ingest); a folder removes every source below it."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Allow emptying the index: with no PATH, remove every source; with folders, allow them to cover it all.")
    ] = False,
    index: IndexOption = DEFAULT_INDEX,
    config: ConfigOption = None,
    set_: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove documents from every part of the index (vectors, BM25, manifest).

    Says how many sources each folder takes before removing them. Folders that would empty the index need
    --all; an empty path is refused (exit 2, nothing removed); a path that names no source is reported (exit 1).

    Example: rag remove data/handbook.pdf --index .rag/demo; rag remove data/hr/ --index .rag/demo
    """
    from rag.cli.output import print_ingest_report, stderr_console
    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor
    from rag.ingest.removal import plan_removal, reject_blank_paths

    if not paths and not everything:
        raise UsageError("no path given", "name the sources to remove (see `rag sources`), or pass --all to empty the index")
    reject_blank_paths(paths or [], "give the source's path as `rag sources` lists it; nothing was removed")
    settings = _config(config, set_)
    with Index.open(index, settings, writable=True) as opened:
        given = paths or [record.path for record in opened.manifest.sources()]
        plan = plan_removal(opened.manifest.sources(), given, folders=True, everything=everything)
        if not as_json:
            folders = ", ".join(f"{folder} ({plan.per_path[folder]})" for folder in plan.folders)
            stderr_console().print(f"Removing {len(plan.sources)} source(s)" + (f"; folders: {folders}" if folders else ""))
        report = Ingestor(opened).remove(given, folders=True, everything=everything)
    emit(report.to_json(), as_json, lambda: print_ingest_report(report, opened.location))
    _state["exit_at_once"] = True  # as in `ingest`
    raise typer.Exit(report.exit_code)


@app.command()
def sources(
    index: IndexOption = DEFAULT_INDEX,
    as_json: JsonOption = False,
) -> None:
    """List what is indexed: path, type, pages, chunks and when it was ingested."""
    from rag.cli.output import print_sources
    from rag.config import RagConfig
    from rag.index.store import Index

    with Index.open(index, RagConfig()) as opened:
        records = opened.manifest.sources()
    rows = [
        {
            "path": r.display_path,
            "type": r.file_type,
            "documents": r.documents,
            "pages": r.pages,
            "chunks": r.chunks,
            "tags": r.tag_list,
            "groups": r.group_list,
            "ingested_at": r.ingested_at,
        }
        for r in records
    ]
    emit(rows, as_json, lambda: print_sources(rows))


SourceFilter = Annotated[
    Optional[list[str]],
    typer.Option("--source", help="Only search sources matching this glob, e.g. 'data/*.pdf' or data/hr (repeatable)."),
]
TypeFilter = Annotated[
    Optional[list[str]],
    typer.Option("--type", help=f"Only search these file types (repeatable): {', '.join(FILE_TYPES)}, or a plug-in loader's type."),
]
TagFilter = Annotated[
    Optional[list[str]],
    typer.Option("--tag", "-t", help="Only search sources with this tag (repeatable); an unknown tag is an error that lists the index's tags."),
]


def _filters(source: list[str] | None, file_type: list[str] | None, tag: list[str] | None, pipeline: RagPipeline) -> Filters:
    """The search filters, checked against the index: unknown values and filters that keep no source are usage errors."""
    from rag.retrieve.filter_check import require_matches
    from rag.retrieve.filters import Filters

    filters = Filters(tuple(source or ()), tuple(file_type or ()), tuple(tag or ()))
    require_matches(filters, pipeline.index.manifest)
    return filters


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    index: IndexOption = DEFAULT_INDEX,
    config: ConfigOption = None,
    set_: SetOption = None,
    as_json: JsonOption = False,
    explain: Annotated[bool, typer.Option("--explain", help="Also show the retrieval trace: queries, candidates and their scores.")] = False,
    source: SourceFilter = None,
    file_type: TypeFilter = None,
    tag: TagFilter = None,
) -> None:
    """Answer a question from the indexed documents, with checked citations.

    Offline by default (quotes the sentences that answer it); with an LLM configured
    (--set llm.provider=openai --set llm.base_url=... --set llm.model=...) the model writes the answer.
    Example: rag ask "How many vacation days do new employees get?" --index .rag/demo
    """
    from rag.cli.answer_view import print_answer
    from rag.cli.output import print_trace
    from rag.pipeline import RagPipeline, answer_to_json

    settings = _config(config, set_)
    with RagPipeline.open(index, settings) as pipeline:
        filters = _filters(source, file_type, tag, pipeline)
        if as_json:
            answer = pipeline.ask(question, filters=filters)
            print(json.dumps(answer_to_json(answer), indent=2, default=str))
            return
        answer = print_answer(pipeline.stream(question, filters=filters))
        if explain:
            print_trace(answer)


@app.command()
def chat(
    index: IndexOption = DEFAULT_INDEX,
    config: ConfigOption = None,
    set_: SetOption = None,
    source: SourceFilter = None,
    file_type: TypeFilter = None,
    tag: TagFilter = None,
) -> None:
    """Multi-turn questions in the terminal; follow-ups are understood in context. Ctrl-D or 'exit' quits."""
    from rag.cli.answer_view import print_answer
    from rag.pipeline import RagPipeline

    settings = _config(config, set_)
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    with RagPipeline.open(index, settings) as pipeline:
        filters = _filters(source, file_type, tag, pipeline)
        while True:
            try:
                question = input("you> " if interactive else "").strip()
            except EOFError:
                break
            if question.lower() in ("exit", "quit", ":q"):
                break
            if not question:
                continue
            answer = print_answer(pipeline.stream(question, history=history, filters=filters))
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]


from rag.cli.eval_cmd import eval_app  # noqa: E402  (sub-commands register on it)

app.add_typer(eval_app, name="eval")

from rag.cli.keys_cmd import keys_app  # noqa: E402
from rag.cli.serve_cmd import serve  # noqa: E402

app.add_typer(keys_app, name="keys")

from rag.cli.index_cmd import index_app  # noqa: E402

app.add_typer(index_app, name="index")
app.command("serve")(serve)


@app.command("config")
def show_config(
    config: ConfigOption = None,
    set_: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the effective configuration as YAML.

    It merges defaults, the config file, RAG_* environment variables and --set; save the output
    as rag.yaml to start your own config.
    """
    settings = _config(config, set_)
    data = settings.public_dict()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False), end="")


from rag.cli.ui_cmd import ui as ui_command  # noqa: E402  (the chat UI; streamlit loads in its own process)

app.command("ui")(ui_command)


def run() -> None:
    """Console-script entry point: user-fixable errors get one clear message, not a traceback."""
    try:
        code = app(standalone_mode=False)  # typer returns typer.Exit codes instead of raising them
        if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C (KeyboardInterrupt) into this code, silently
            print("interrupted", file=sys.stderr)
        _exit(code if isinstance(code, int) else 0)
    except typer.Exit as done:
        _exit(done.exit_code)
    except Interrupted:  # the command already said what the interruption left behind
        sys.exit(EXIT_INTERRUPTED)
    except RagError as exc:
        _fail(exc, EXIT_CONFIG if isinstance(exc, UsageError) or "config" in exc.message else EXIT_RUNTIME)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # click's usage errors (bad option values, missing arguments: exit 2), else unexpected
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]  # click.ClickException (typer < 0.29) or typer's own copy of it
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]  # as above: checked by getattr, not by class
        if _state["debug"]:
            raise
        print(f"error: {type(exc).__name__}: {exc}\n(run with --debug for the full traceback)", file=sys.stderr)
        sys.exit(EXIT_RUNTIME)


def _exit(code: int) -> NoReturn:
    """Exit with `code`. A command that set `_state["exit_at_once"]` (it closed its index and printed its report)
    ends without the interpreter's teardown of every loaded module: after an ingest that loaded Chroma, that
    teardown took longer than the index's own work (about 0.1-0.15 s on 2 cores, more under load). The
    vector store clients are closed first (what Chroma does at a normal exit), and the output flushed. Under a
    profiler or tracer (cProfile, coverage) the normal exit runs, so they can write what they gathered."""
    if not _state["exit_at_once"] or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    import logging
    import os

    from rag.index.handles import VECTOR_HANDLES

    try:
        VECTOR_HANDLES.close_all()
    except Exception:  # noqa: BLE001  (everything is committed: let the normal teardown release what is left)
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`rag ingest ... | head`): nothing more can be said there
            pass
    os._exit(code)


def _fail(exc: RagError, code: int) -> None:
    if _state["debug"]:
        raise exc
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"  fix: {exc.hint}", file=sys.stderr)
    sys.exit(code)
