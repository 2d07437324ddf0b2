"""`rag serve`: the HTTP API over one index (FastAPI on uvicorn, imported only when the command runs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.options import ConfigOption, IndexOption, SetOption


def serve(
    index: IndexOption = ".rag/index",
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port.")] = 8000,
    config: ConfigOption = None,
    set_: SetOption = None,
) -> None:
    """Serve the index over HTTP: /v1/ask, /v1/retrieve and OpenAI-compatible /v1/chat/completions.

    Every request needs an API key, sent as `Authorization: Bearer KEY`; create keys with `rag keys create --index DIR --name alice --groups staff`.

    A key reads documents ingested without groups plus those sharing one of its groups (`rag ingest PATH --groups hr`). Admin keys (`--admin`) read everything and may also POST /v1/ingest, POST /v1/remove and GET /v1/sources.

    The OpenAPI document is at /openapi.json; /healthz needs no key. One log line per request (never the question). Limits: --set serve.max_body_kb, serve.max_question_chars, serve.max_top_k, serve.request_timeout_s, serve.pipelines (answers at once).

    Example: rag serve --index .rag/demo --port 8000, then point any OpenAI client at http://127.0.0.1:8000/v1
    """
    import uvicorn

    from rag.config import load_config, resolve_config_path
    from rag.index.store import Index
    from rag.serve.app import create_app

    settings = load_config(resolve_config_path(config), set_ or [])
    opened = Index.open(index, settings)  # a clear error now if there is no index
    location = opened.location  # a URL's password masked
    opened.close()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(index, settings)
    typer.echo(f"serving {location} on http://{host}:{port} (OpenAPI: /openapi.json; Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=10)
