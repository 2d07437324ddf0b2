"""Server time limits and back-pressure: a slow answer gets 504, a full pipeline pool 503, and the pool
recovers. The app runs under uvicorn in a thread on 127.0.0.1; embeddings and the chat model come from the fake
OpenAI-compatible server, whose chat replies the test holds (`ChatGate`) to keep the one pipeline busy for exactly
as long as it needs: every test waits on events, never on a pause.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import fake_endpoint_config, free_port

REPLY = "New employees get 20 vacation days per year [1]."


class ChatGate:
    """The fake chat model: each reply waits until the test releases it; `entered` is set when one is waiting."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.entered.set()
        assert self.release.wait(timeout=120), "the test never released the chat reply"
        return REPLY

    def reset(self) -> None:
        self.entered.clear()
        self.release.clear()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, ChatGate]]:
    import uvicorn

    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor
    from rag.serve.app import create_app
    from rag.serve.keys import open_key_store

    root = tmp_path_factory.mktemp("limits")
    (root / "docs").mkdir()
    (root / "docs/handbook.md").write_text("# Handbook\n\nNew employees get 20 vacation days per year.\n", encoding="utf-8")

    gate = ChatGate()
    with FakeOpenAI(chat_reply=gate) as fake:
        config = fake_endpoint_config(
            fake.base_url,
            "llm.provider=openai", f"llm.base_url={fake.base_url}", "llm.api_key=test-key", "llm.max_retries=0",
            "serve.pipelines=1", "serve.queue_timeout_s=0.3", "serve.request_timeout_s=0.8",
        )
        previous = os.getcwd()
        os.chdir(root)
        try:
            with Index.open(root / "index", config, writable=True) as index:
                assert not Ingestor(index).ingest(["docs"]).failed
        finally:
            os.chdir(previous)
        _, key = open_key_store(root / "index").create("tester", ())
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(root / "index", config), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not server.started:  # uvicorn sets it once the socket listens
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield url, key, gate
        gate.release.set()
        server.should_exit = True
        thread.join(timeout=30)


def ask(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/v1/ask", json={"question": "How many vacation days?"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def retrieve(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/v1/retrieve", json={"query": "vacation days"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def chat(url: str, key: str, stream: bool) -> httpx.Response:
    body = {"model": "rag", "stream": stream, "messages": [{"role": "user", "content": "How many vacation days?"}]}
    return httpx.post(url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def pipeline_comes_back(url: str, key: str) -> None:
    """Retry until the pool has its pipeline again (a request that finds it busy is refused after 0.3 s)."""
    deadline = time.monotonic() + 60
    while (response := retrieve(url, key)).status_code == 503:
        assert time.monotonic() < deadline, "the pipeline never came back to the pool"
    assert response.status_code == 200 and response.json()["results"]


@pytest.fixture
def gate(slow_server: tuple[str, str, ChatGate]) -> Iterator[ChatGate]:
    """A fresh gate per test; whatever a test left held is released and its pipeline is back before the next."""
    url, key, held = slow_server
    held.reset()
    yield held
    held.release.set()
    pipeline_comes_back(url, key)


def test_a_request_over_the_time_limit_gets_504_and_the_pipeline_comes_back(slow_server: tuple[str, str, ChatGate], gate: ChatGate) -> None:
    url, key, _ = slow_server
    response = ask(url, key)  # the reply is held until released below: only the time limit can end this request
    assert response.status_code == 504 and "serve.request_timeout_s" in response.json()["error"]["message"]
    assert gate.entered.is_set() and not gate.release.is_set()  # answered at the limit, while the work was still held
    gate.release.set()  # the abandoned work finishes and gives its pipeline back
    pipeline_comes_back(url, key)


def test_requests_beyond_the_pool_wait_then_get_503(slow_server: tuple[str, str, ChatGate], gate: ChatGate) -> None:
    url, key, _ = slow_server
    first: dict[str, httpx.Response] = {}
    holder = threading.Thread(target=lambda: first.update(response=ask(url, key)))
    holder.start()
    assert gate.entered.wait(timeout=60)  # the one pipeline is now busy with the held answer
    busy = retrieve(url, key)
    holder.join()  # held past the time limit: 504, while its work still holds the pipeline
    gate.release.set()
    assert busy.status_code == 503 and "busy" in busy.json()["error"]["message"]
    assert first["response"].status_code == 504


def test_a_streamed_chat_on_a_full_pool_gets_a_plain_503_and_a_finished_stream_gives_its_pipeline_back(
    slow_server: tuple[str, str, ChatGate], gate: ChatGate
) -> None:
    url, key, _ = slow_server
    first: dict[str, httpx.Response] = {}
    holder = threading.Thread(target=lambda: first.update(response=chat(url, key, stream=True)))
    holder.start()
    assert gate.entered.wait(timeout=60)  # the one pipeline is now streaming the held answer
    busy = chat(url, key, stream=True)
    gate.release.set()
    holder.join()
    assert busy.status_code == 503 and busy.headers["content-type"].startswith("application/json")
    assert "busy" in busy.json()["error"]["message"]
    streamed = first["response"]
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    after = retrieve(url, key)  # the stream's end gave the pipeline back: the very next request gets it
    assert after.status_code == 200 and after.json()["results"]
