"""The OpenAPI document carries the server's configured limits, so a request valid by the schema is one the server
takes: question length and top_k bounds come from `serve.*` at start-up, not from the models' static fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from rag.config import ServeConfig


def with_limits(app: FastAPI, limits: ServeConfig) -> Callable[[], dict[str, Any]]:
    """An `app.openapi` that builds FastAPI's document once and writes the limits into it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _apply_limits(build(), limits)
        assert app.openapi_schema is not None
        return app.openapi_schema

    return openapi


def _apply_limits(document: dict[str, Any], limits: ServeConfig) -> None:
    models = document["components"]["schemas"]
    for model, text in (("AskIn", "question"), ("RetrieveIn", "query"), ("ChatOptions", None)):
        fields = models[model]["properties"]
        if text is not None:
            fields[text]["maxLength"] = limits.max_question_chars
        for branch in fields["top_k"].get("anyOf", [fields["top_k"]]):
            if branch.get("type") == "integer":
                branch["maximum"] = limits.max_top_k
