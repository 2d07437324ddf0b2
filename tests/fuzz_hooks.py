"""Schemathesis hooks of tests/test_api_fuzz.py (loaded by the `schemathesis` CLI via SCHEMATHESIS_HOOKS).

They touch only schema-valid (positive) requests, and only where a rule depends on the index's contents, which a
schema cannot state; each such rule is documented in the schema and in docs/serving.md:
- filters: a tag no readable document carries, or a file type no loader knows, is a 422 that lists the choices;
- chat: the last user/assistant turn must be a user message with text (it is the question), else 422;
- ingest/remove: server-side paths are kept below a sandbox folder of the server's working directory, so the
  fuzzer reads no file outside it (e.g. "/") and removes none of the sample sources by chance.
Invalid (negative) requests go out unchanged: each must get a 4xx.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from rag.core.file_types import FILE_TYPES

SANDBOX = "fuzz-sandbox"
QUESTION = "How many vacation days do new employees get?"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body
    if not isinstance(body, dict) or case.meta is None or not case.meta.generation.mode.is_positive:
        return
    path = case.operation.path
    if path in ("/v1/ask", "/v1/retrieve") and isinstance(body.get("filters"), dict):
        filters = body["filters"]
        filters["tags"] = []
        filters["file_types"] = [kind for kind in filters.get("file_types", []) if kind in FILE_TYPES]
    elif path == "/v1/chat/completions" and isinstance(body.get("messages"), list):
        turns = [m for m in body["messages"] if m.get("role") in ("user", "assistant")]
        if not turns or turns[-1]["role"] != "user" or not isinstance(turns[-1].get("content"), str) or not turns[-1]["content"].strip():
            question = {"role": "user", "content": QUESTION}
            body["messages"] = [*body["messages"][:99], question]
    elif path in ("/v1/ingest", "/v1/remove") and isinstance(body.get("paths"), list):
        body["paths"] = [f"{SANDBOX}/{given.replace('..', '__').lstrip('/')}" for given in body["paths"]]
