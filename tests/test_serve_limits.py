"""Server time limits and back-pressure: a slow answer gets 504, a full pipeline pool 503, and the pool
recovers. The app runs under uvicorn in a thread on 127.0.0.1; embeddings and the (deliberately slow)
chat model come from the fake OpenAI-compatible server.
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

SLOW_REPLY_S = 1.5


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    import uvicorn

    from rag.index.store import Index
    from rag.ingest.pipeline import Ingestor
    from rag.serve.app import create_app
    from rag.serve.keys import open_key_store

    root = tmp_path_factory.mktemp("limits")
    (root / "docs").mkdir()
    (root / "docs/handbook.md").write_text("# Handbook\n\nNew employees get 20 vacation days per year.\n", encoding="utf-8")

    def slow(messages: list[dict[str, str]]) -> str:
        time.sleep(SLOW_REPLY_S)
        return "New employees get 20 vacation days per year [1]."

    with FakeOpenAI(chat_reply=slow) as fake:
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
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url, key
        server.should_exit = True
        thread.join(timeout=30)


def ask(url: str, key: str) -> httpx.Response:
    return httpx.post(url + "/v1/ask", json={"question": "How many vacation days?"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_request_over_the_time_limit_gets_504_and_the_pipeline_comes_back(slow_server: tuple[str, str]) -> None:
    url, key = slow_server
    started = time.perf_counter()
    response = ask(url, key)
    assert response.status_code == 504 and "serve.request_timeout_s" in response.json()["error"]["message"]
    assert time.perf_counter() - started < SLOW_REPLY_S  # answered at the limit, not when the work ended
    time.sleep(SLOW_REPLY_S)  # the abandoned work finishes and gives its pipeline back
    retrieved = httpx.post(url + "/v1/retrieve", json={"query": "vacation days"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert retrieved.status_code == 200 and retrieved.json()["results"]


def test_requests_beyond_the_pool_wait_then_get_503(slow_server: tuple[str, str]) -> None:
    url, key = slow_server
    time.sleep(SLOW_REPLY_S)
    first: dict[str, httpx.Response] = {}
    holder = threading.Thread(target=lambda: first.update(response=ask(url, key)))
    holder.start()
    time.sleep(0.2)  # the one pipeline is now busy with the slow answer
    busy = httpx.post(url + "/v1/retrieve", json={"query": "vacation"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    holder.join()
    assert busy.status_code == 503 and "busy" in busy.json()["error"]["message"]
    assert first["response"].status_code == 504


def chat(url: str, key: str, stream: bool) -> httpx.Response:
    body = {"model": "rag", "stream": stream, "messages": [{"role": "user", "content": "How many vacation days?"}]}
    return httpx.post(url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_streamed_chat_on_a_full_pool_gets_a_plain_503_and_a_finished_stream_gives_its_pipeline_back(
    slow_server: tuple[str, str],
) -> None:
    url, key = slow_server
    time.sleep(SLOW_REPLY_S)
    first: dict[str, httpx.Response] = {}
    holder = threading.Thread(target=lambda: first.update(response=chat(url, key, stream=True)))
    holder.start()
    time.sleep(0.2)  # the one pipeline is now streaming the slow answer
    busy = chat(url, key, stream=True)
    holder.join()
    assert busy.status_code == 503 and busy.headers["content-type"].startswith("application/json")
    assert "busy" in busy.json()["error"]["message"]
    streamed = first["response"]
    assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
    after = httpx.post(url + "/v1/retrieve", json={"query": "vacation"}, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert after.status_code == 200 and after.json()["results"]
