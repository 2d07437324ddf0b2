"""ui/api_client.py: the server's /v1/ask and /v1/document JSON as the chat page's turns and source views, and
the client's errors. The JSON comes from the real pipeline (answer_to_json, what /v1/ask returns)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag.config import load_config
from rag.errors import RagError
from rag.pipeline import RagPipeline, answer_to_json
from tests.conftest import REPO
from tests.helpers import free_port

if str(REPO / "ui") not in sys.path:
    sys.path.insert(0, str(REPO / "ui"))
from api_client import ApiRefused, RagApi, chat_turn_from_json, source_view_from_json  # noqa: E402

pytestmark = pytest.mark.slow


def test_an_answer_becomes_a_turn_whose_spans_open_the_cited_text(demo_workdir: Path) -> None:
    with RagPipeline.open(demo_workdir / ".rag/demo", load_config(None, [])) as pipeline:
        answer = pipeline.ask("How many vacation days do new employees get?")
        shaped = answer_to_json(answer)
        documents = {p.number: pipeline.index.manifest.document(p.source_key, p.doc_id) for p in answer.passages}
    turn = chat_turn_from_json(shaped)
    assert turn.answer == answer.answer and set(turn.citations) == {c.marker for c in answer.citations} != set()
    assert [row["passage"] for row in turn.passages] == sorted(p.number for p in answer.passages)
    for marker, ref in turn.citations.items():
        stored = documents[marker]
        served = {"text": stored.text, "pages": len(stored.pages),
                  "sections": [{"start": s.start, "end": s.end, "heading_path": list(s.heading_path)} for s in stored.sections]}
        view = source_view_from_json(served, ref)
        cited = next(c for c in answer.citations if c.marker == marker)  # the first span of the marker
        assert view.cited_text == cited.text and view.source == cited.source and view.page_count == len(stored.pages)
    with pytest.raises(RagError, match="no longer exists"):
        source_view_from_json({"text": "short"}, next(iter(turn.citations.values())))


def test_the_trace_gives_the_passages_their_retriever_scores(demo_workdir: Path) -> None:
    with RagPipeline.open(demo_workdir / ".rag/demo", load_config(None, [])) as pipeline:
        shaped = answer_to_json(pipeline.ask("How many vacation days do new employees get?"))
    with_trace, without = chat_turn_from_json(shaped), chat_turn_from_json({**shaped, "trace": {}})
    assert any(row["fused"] is not None for row in with_trace.passages)
    assert all(row["fused"] is None for row in without.passages)


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(ApiRefused, match="cannot reach the rag server") as caught:
        RagApi(f"http://127.0.0.1:{free_port()}", key="rag_x").me()
    assert caught.value.status == 0 and "rag serve" in caught.value.hint and "rag_x" not in str(caught.value)
