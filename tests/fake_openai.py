"""A small OpenAI-compatible server on 127.0.0.1 for tests (stdlib only).

Routes: /v1/embeddings, /v1/chat/completions (with SSE streaming) and /v1/rerank (Cohere/Jina style).

Vectors are a deterministic hashed bag of words, so similar texts get similar vectors and a
test can reason about retrieval without a model. Requests are recorded for assertions.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any

DIMENSIONS = 64


def bag_of_words_vector(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


class FakeOpenAI:
    """Start with `with FakeOpenAI() as server:`; `server.base_url` ends in /v1."""

    def __init__(self, api_key: str = "test-key", chat_reply: Callable[[list[dict[str, str]]], str] | None = None, port: int = 0) -> None:
        """`chat_reply(messages)` scripts the chat model's answer (default: echo the last user message). `port`: 0
        picks a free one; a fixed port keeps the embedding model's id (which names the URL) the same across runs.

        `before_reply(path, body)`, if set, runs on the request's thread before it is answered: a test can block
        there (e.g. on a threading.Event) to hold its client mid-operation at a known point.
        """
        self.api_key = api_key
        self.chat_reply = chat_reply or (lambda messages: messages[-1]["content"])
        self.before_reply: Callable[[str, dict[str, Any]], None] | None = None
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append({"path": self.path, "body": body})
                if outer.before_reply is not None:
                    outer.before_reply(self.path, body)
                if self.headers.get("Authorization") != f"Bearer {outer.api_key}":
                    return self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
                if self.path == "/v1/embeddings":
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    data = [{"object": "embedding", "index": i, "embedding": bag_of_words_vector(t)} for i, t in enumerate(inputs)]
                    return self._send(200, {"object": "list", "data": data, "model": body.get("model"), "usage": {"prompt_tokens": 0, "total_tokens": 0}})
                if self.path == "/v1/chat/completions":
                    return self._chat(body)
                if self.path in ("/v1/rerank", "/rerank"):
                    query = bag_of_words_vector(body["query"])
                    scored = [
                        {"index": i, "relevance_score": sum(a * b for a, b in zip(query, bag_of_words_vector(d)))}
                        for i, d in enumerate(body["documents"])
                    ]
                    scored.sort(key=lambda r: -r["relevance_score"])
                    return self._send(200, {"results": scored[: body.get("top_n") or len(scored)]})
                self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _chat(self, body: dict[str, Any]) -> None:
                reply = outer.chat_reply(body["messages"])
                if not body.get("stream"):
                    return self._send(200, {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    })
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [reply[i : i + 7] for i in range(0, len(reply), 7)]  # small deltas split words and markers
                for piece in pieces:
                    event = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                done = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    def embedded_texts(self) -> list[str]:
        texts: list[str] = []
        for request in self.requests:
            if request["path"] == "/v1/embeddings":
                texts.extend(request["body"]["input"])
        return texts
