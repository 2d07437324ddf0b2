"""/v1/ask and /v1/retrieve: answers with checked citations, and ranked chunks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from rag.index.contracts import ApiKey
from rag.core.results import AnswerOut, RankedChunk
from rag.pipeline import Query
from rag.retrieve.filter_check import nothing_matches
from rag.retrieve.filters import Filters
from rag.serve.context import ServerState, caller, check_text, check_top_k, run_with_pipeline, server
from rag.serve.errors import BODY_ERRORS, ERRORS, TIMEOUT_ERRORS
from rag.serve.schemas import AskIn, FiltersIn, RetrieveIn, RetrieveOut

router = APIRouter(tags=["questions"], responses={**ERRORS, **BODY_ERRORS, **TIMEOUT_ERRORS})


@router.post("/v1/ask")
async def ask(body: AskIn, key: ApiKey = Depends(caller), state: ServerState = Depends(server)) -> dict[str, Any]:
    """Answer with checked citations: the JSON of `rag ask --json`, whose `trace` is sent only with `include_trace`."""
    check_text(state.limits, body.question, "the question")
    check_top_k(state.limits, body.top_k)
    history = [turn.model_dump() for turn in body.history]
    answer = await run_with_pipeline(
        state, lambda p: p.ask(Query(body.question, history, to_filters(body.filters), key.access, body.top_k))
    )
    return AnswerOut.of(answer).to_json(passages=body.include_passages, trace=body.include_trace)


@router.post("/v1/retrieve")
async def retrieve(body: RetrieveIn, key: ApiKey = Depends(caller), state: ServerState = Depends(server)) -> RetrieveOut:
    """Ranked chunks with their scores and character spans in the extracted document text."""
    check_text(state.limits, body.query, "the query")
    check_top_k(state.limits, body.top_k)
    filters = to_filters(body.filters)
    retrieved = await run_with_pipeline(state, lambda p: p.retrieve(Query(body.query, None, filters, key.access, body.top_k)))
    notice = nothing_matches(filters, key.access) if retrieved.trace.filters_match_nothing else None
    return RetrieveOut(query=body.query, results=[RankedChunk.of(rank, s) for rank, s in enumerate(retrieved.ranked, start=1)], notice=notice)


def to_filters(filters: FiltersIn) -> Filters:
    return Filters(tuple(filters.sources), tuple(filters.file_types), tuple(filters.tags))
