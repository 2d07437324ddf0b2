"""`rag ui`: start the Streamlit chat UI (ui/app.py) on an index. Streamlit is only imported by the child process."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.options import ConfigOption, IndexOption, SetOption
from rag.errors import RagError

# How `rag ui` tells the app (ui/app.py, started as its own process) what to open: environment variables.
INDEX_ENV = "RAG_UI_INDEX"  # the index folder `rag ui --index` opens first
SETTINGS_ENV = "RAG_UI_SET"  # JSON list of `section.key=value` overrides given to `rag ui --set`
RUNS_ENV = "RAG_UI_RUNS"  # folder of evaluation run folders for the evaluation page


API_ENV = "RAG_UI_API"  # the `rag serve` URL of API mode (`--api`)
SSO_HEADER_ENV = "RAG_UI_SSO_HEADER"  # the header an SSO proxy puts the user name in (`--sso-header`)


def find_app() -> Path:
    """ui/app.py of this checkout (an editable install); $RAG_UI_APP points elsewhere if the code moved."""
    explicit = os.environ.get("RAG_UI_APP")
    candidates = [Path(explicit)] if explicit else [Path(__file__).resolve().parents[2] / "ui" / "app.py", Path.cwd() / "ui" / "app.py"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RagError(
        "the UI app (ui/app.py) was not found",
        "run from a checkout of the project (pip install -e '.[ui]'), or set $RAG_UI_APP to the path of ui/app.py",
    )


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no developer menu ("Deploy", rerun settings) for end users
    ]


def ui(
    index: IndexOption = ".rag/index",
    config: ConfigOption = None,
    set_: SetOption = None,
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 serves your network: without --api the UI has no login).")] = "127.0.0.1",
    runs: Annotated[Optional[Path], typer.Option("--runs", help="Folder of evaluation runs for the Evaluation page (default: ./eval/runs).")] = None,
    api: Annotated[Optional[str], typer.Option(
        "--api", help="URL of a `rag serve`: people sign in with an API key and see only what their key may read (--index is not used).",
    )] = None,
    sso_header: Annotated[Optional[str], typer.Option(
        "--sso-header", help="With --api behind an SSO proxy: the header carrying the signed-in user name (e.g. X-Forwarded-User); see docs/ui.md.",
    )] = None,
) -> None:
    """Open the chat UI in your browser: answers with clickable citations, sources, retrieval traces, evaluation runs.

    The index may be empty or missing: upload files from the sidebar to build it.
    Settings from --config and --set are the sidebar's starting values.
    Needs the `ui` extra: pip install 'rag\\[ui]'.

    Local mode reads the index files and shows every document to whoever opens the page. For staff, run
    `rag serve` and `rag ui --api URL`: people sign in and every question, source view and upload goes
    through the API with their key's groups (uploads need an admin key).

    Example: rag ui --index .rag/demo   (then open http://127.0.0.1:8501)
    Example: rag ui --api http://127.0.0.1:8000
    """
    from rag.config import load_config, resolve_config_path

    if importlib.util.find_spec("streamlit") is None:
        raise RagError("streamlit is not installed", "install the UI extra: pip install 'rag[ui]'")
    from rag.index.backends import index_url, masked

    if sso_header and not api:
        raise RagError("--sso-header needs --api", "give the URL of the `rag serve` that trusts that header: rag ui --api URL --sso-header NAME")
    if api is not None and not api.startswith(("http://", "https://")):
        raise RagError(f"--api {api!r} is not an http(s) URL", "give the address `rag serve` listens on, e.g. --api http://127.0.0.1:8000")
    url = index_url(index)
    if url is not None and api is None:  # the UI reads an index folder's files; as an API client it comes with issue 17 part C
        raise RagError(
            f"the chat UI cannot open the index at {masked(url)} yet: it reads index folders only",
            "serve that index with `rag serve --index URL` and use its HTTP API, or give the UI an index folder",
        )
    config_path = resolve_config_path(config)
    load_config(config_path, set_ or [])  # fail here, with the usual message, rather than inside the app
    app = find_app()
    env = dict(os.environ)
    env[INDEX_ENV] = str(Path(index).resolve())
    env[SETTINGS_ENV] = json.dumps(set_ or [])
    if config_path is not None:
        env["RAG_CONFIG"] = str(config_path.resolve())
    if runs is not None:
        env[RUNS_ENV] = str(runs.resolve())
    env.pop(API_ENV, None)
    env.pop(SSO_HEADER_ENV, None)
    if api is not None:
        env[API_ENV] = api
        if sso_header:
            env[SSO_HEADER_ENV] = sso_header
    where = f"client of {api}" if api else f"index {index}"
    print(f"chat UI on http://{host}:{port} ({where}); Ctrl-C stops it", file=sys.stderr, flush=True)
    command = streamlit_command(app, host, port)
    os.execve(command[0], command, env)  # become the server: signals (Ctrl-C, SIGTERM) reach Streamlit directly
