"""ui/api_client.py: the server's /v1/ask and /v1/document JSON as the chat page's turns and source views, and
the client's errors. The JSON comes from the real pipeline (answer_to_json, what /v1/ask returns).

Streaming is tested against a real `rag serve` whose chat model is tests/held_chat.py: it sends its first sentence,
then waits for the test's word (`go` or `fail`) before the rest, so each test knows where the stream stands."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import load_config
from rag.errors import RagError
from rag.pipeline import RagPipeline, answer_to_json
from rag.index.backends import open_backend
from tests.conftest import REPO
from tests.held_chat import clear, released
from tests.helpers import free_port, stop_process_group
from tests.test_ui_api_e2e import HELD, held_env, serve

if str(REPO / "ui") not in sys.path:
    sys.path.insert(0, str(REPO / "ui"))
from api_client import ApiEvent, ApiRefused, RagApi, chat_turn_from_json, source_view_from_json  # noqa: E402

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


# --- streaming from a real server ----------------------------------------------------------------
QUESTION = "How many vacation days do new employees get?"
SSO_HEADER = "X-Remote-User"


class HeldServer:
    """A `rag serve` whose chat model waits for `say(word)` after its first sentence."""

    def __init__(self, workdir: Path, log: str) -> None:
        self.hold = workdir / f"{log}.hold"
        clear(self.hold)
        self.url, self.process = serve(workdir, log, *HELD, f"serve.trusted_user_header={SSO_HEADER}", env=held_env(self.hold))
        store = open_backend(workdir / ".rag/demo").key_store()
        self.key = store.create(f"stream-{log}", ())[1]
        self.sso_user = f"sso-{log}"
        store.create(self.sso_user, ())

    def say(self, word: str) -> None:
        self.hold.write_text(word)

    def stream(self, api: RagApi, top_k: int | None = None) -> Iterator[ApiEvent]:
        """The events of one answer; the model's word is cleared first, so it holds after the first sentence."""
        clear(self.hold)
        return api.stream(QUESTION, [], top_k)

    def answer(self, api: RagApi, top_k: int | None = None) -> list[ApiEvent]:
        """Every event of one answer, the model told to go on once the first sentence has arrived."""
        events = self.stream(api, top_k)
        first = next(events)
        self.say("go")
        return [first, *events]


@pytest.fixture(scope="module")
def held(demo_workdir: Path) -> Iterator[HeldServer]:
    server = HeldServer(demo_workdir, "serve-stream.log")
    try:
        yield server
    finally:
        stop_process_group(server.process)


def test_a_streamed_answer_shows_its_first_sentence_before_the_rest_is_written(held: HeldServer) -> None:
    events = held.stream(RagApi(held.url, key=held.key))
    first = next(events)  # arrives while the model still waits for the word: the answer is not complete
    assert first.kind == "delta" and first.text.strip().endswith("[1]") and not released(held.hold).exists()
    held.say("go")
    rest = list(events)
    assert [e.kind for e in rest] == ["delta", "done"]
    answer = rest[-1].answer
    assert answer is not None and (first.text + rest[0].text).strip() == answer["answer"]
    turn = chat_turn_from_json(answer)  # the whole answer, as /v1/ask gives it: citations, passages and trace
    assert turn.question == QUESTION and set(turn.citations) == {1} and turn.written_by_llm
    assert turn.citations[1].source == turn.passage_refs[1].source
    assert any(row["fused"] is not None for row in turn.passages)  # the trace's scores reached the sources table


def test_top_k_reaches_the_server_and_its_limit_is_explained(held: HeldServer) -> None:
    api = RagApi(held.url, key=held.key)
    events = held.answer(api, top_k=1)
    assert len(chat_turn_from_json(events[-1].answer).passages) == 1  # type: ignore[arg-type]
    with pytest.raises(ApiRefused, match="serve.max_top_k") as caught:
        next(api.stream(QUESTION, [], top_k=10_000))
    assert caught.value.status == 422


def test_a_failure_after_the_stream_began_keeps_the_text_and_says_what_happened(held: HeldServer) -> None:
    events = held.stream(RagApi(held.url, key=held.key))
    first = next(events)
    held.say("fail")
    with pytest.raises(ApiRefused, match="the server stopped answering: the held chat model was told to fail") as caught:
        next(events)
    assert first.kind == "delta" and first.text and "ask again" in caught.value.hint
    assert held.answer(RagApi(held.url, key=held.key))[-1].kind == "done"  # the server answers the next question


def test_a_refused_key_is_a_401_with_how_to_fix_it(held: HeldServer) -> None:
    with pytest.raises(ApiRefused, match="unknown or revoked API key") as caught:
        next(RagApi(held.url, key="rag_000000000000_not-a-key").stream(QUESTION, []))
    assert caught.value.status == 401 and "rag keys create" in caught.value.hint and "not-a-key" not in str(caught.value)


def test_an_sso_user_streams_without_an_api_key(held: HeldServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Authorization header goes out: not even $OPENAI_API_KEY, which the `openai` client would otherwise send."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-server")
    assert held.answer(RagApi(held.url, user_header=(SSO_HEADER, held.sso_user)))[-1].kind == "done"


def test_an_unreachable_server_is_a_clear_error_when_streaming() -> None:
    with pytest.raises(ApiRefused, match="cannot reach the rag server") as caught:
        next(RagApi(f"http://127.0.0.1:{free_port()}", key="rag_x").stream(QUESTION, []))
    assert caught.value.status == 0 and "rag serve" in caught.value.hint


def test_a_server_that_dies_mid_answer_is_a_broken_connection(demo_workdir: Path) -> None:
    server = HeldServer(demo_workdir, "serve-dies.log")
    try:
        events = server.stream(RagApi(server.url, key=server.key))
        assert next(events).kind == "delta"
        os.killpg(server.process.pid, signal.SIGKILL)  # gone mid-answer, as a crashed or restarted server
        server.process.wait()
        with pytest.raises(ApiRefused, match="broke mid-answer") as caught:
            next(events)
    finally:
        if server.process.poll() is None:
            stop_process_group(server.process)
    assert caught.value.status == 0 and "ask again" in caught.value.hint
