"""A local GGUF chat model run in-process by llama.cpp (the `xllamacpp` bindings), CPU only.

`pip install -e ".[llamacpp]"` installs the runtime; `llm.gguf_path` names the model file. Nothing is loaded
until the first request, so building the pipeline (or `rag config`) stays fast and a bad path is reported when the
model is first used, as a `RagError` with a hint.

xllamacpp wraps llama.cpp's own server: `Server(CommonParams)` loads the model and answers OpenAI-style chat
requests in-process. It also always binds an HTTP listener on 127.0.0.1 (random port) that this module never
uses; it is locked with a random API key that is never stored or shown, so other local programs (or a web page in a
browser, as llama.cpp allows any CORS origin) cannot use the model through it. No request leaves the process.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.config import LLMBase
from rag.core.chat import Message
from rag.errors import RagError

INSTALL_HINT = 'pip install -e ".[llamacpp]"'
DEFAULT_CONTEXT = 4096  # tokens: room for the default 1,500-token context budget, the prompt and the answer


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LlamaCppChat:
    """`ChatModel` over a GGUF file: chat template from the GGUF, greedy when `llm.temperature` is 0.

    Thread-safe: llama.cpp's server queues concurrent requests (one slot, so they run one after another).
    """

    def __init__(self, config: LLMBase, n_ctx: int = DEFAULT_CONTEXT, threads: int | None = None) -> None:
        self.config = config
        self.n_ctx = n_ctx
        self.threads = threads or _cpu_count()
        self.name = f"llamacpp:{Path(config.gguf_path).name}" if config.gguf_path else "llamacpp:(no gguf_path)"
        self.load_seconds: float | None = None  # set once the model is loaded
        self._server: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------------------
    # loading
    # ------------------------------------------------------------------------------------------------------------

    def _model_path(self) -> Path:
        if not self.config.gguf_path:
            raise RagError(
                "llm.provider is llamacpp but llm.gguf_path is not set",
                "set llm.gguf_path to a GGUF chat model, e.g. --set llm.gguf_path=models/model.gguf",
            )
        path = Path(self.config.gguf_path).expanduser()
        if not path.is_file():
            raise RagError(f"llm.gguf_path does not exist or is not a file: {path}", "fix llm.gguf_path")
        return path

    def _load(self) -> Any:
        if self._server is not None:
            return self._server
        with self._lock:
            if self._server is not None:
                return self._server
            path = self._model_path()
            try:
                import xllamacpp
            except ImportError:
                raise RagError(
                    "llm.provider is llamacpp but the xllamacpp runtime is not installed", INSTALL_HINT
                ) from None
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.n_ctx
            params.n_parallel = 1  # one slot gets the whole context
            params.n_gpu_layers = 0  # CPU only
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
            params.n_threads_http = 1
            params.api_keys = [secrets.token_urlsafe(32)]  # the unused HTTP listener answers 401 to everyone
            params.sampling.temp = self.config.temperature
            params.offline = True  # never fetch anything
            params.ui = False
            params.warmup = False  # the first request pays that cost instead of every load
            params.verbosity = 0  # keep llama.cpp's per-request logging out of the terminal
            started = time.perf_counter()
            try:
                server = xllamacpp.Server(params)
            except Exception as exc:  # noqa: BLE001 - llama.cpp reports a bad file as a generic error
                raise RagError(
                    f"llama.cpp could not load {path}: {exc}",
                    "check that llm.gguf_path is a complete GGUF chat model",
                ) from None
            self.load_seconds = time.perf_counter() - started
            self._server = server
            return server

    def close(self) -> None:
        """Free the model (it is loaded again on the next request)."""
        with self._lock:
            self._server = None

    # ------------------------------------------------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------------------------------------------------

    def _request(self, messages: list[Message], max_tokens: int | None, stream: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens or self.config.max_tokens,
            "temperature": self.config.temperature,
        }
        if stream:
            request["stream"] = True
        return request

    @staticmethod
    def _raise_if_error(payload: Any) -> None:
        if isinstance(payload, dict) and payload.get("error"):
            error = payload["error"]
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            hint = "check the messages sent to the model"
            if "context" in message.lower():
                hint = "lower context.max_tokens (or the question) so the prompt fits the model's context window"
            raise RagError(f"llama.cpp refused the request: {message}", hint)

    @staticmethod
    def _call(server: Any, request: dict[str, Any], callback: Any = None) -> Any:
        try:
            if callback is None:
                return server.handle_chat_completions(request)
            return server.handle_chat_completions(request, callback)
        except (ValueError, TypeError, RuntimeError) as exc:  # xllamacpp's checks of the request
            raise RagError(f"llama.cpp rejected the request: {exc}", "messages must be role/content dicts") from None

    def complete(self, messages: list[Message], max_tokens: int | None = None) -> str:
        server = self._load()
        result = self._call(server, self._request(messages, max_tokens, stream=False))
        self._raise_if_error(result)
        try:
            return result["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError):
            raise RagError(f"llama.cpp returned an unexpected reply: {str(result)[:200]}") from None

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        """Text deltas as llama.cpp produces them.

        `handle_chat_completions` blocks and calls back once per chunk, so it runs on a worker thread that feeds a
        queue; this generator drains the queue. An error in the worker (or an error chunk) is raised here. Closing
        the generator early tells llama.cpp to stop generating at its next chunk.
        """
        server = self._load()
        request = self._request(messages, max_tokens, stream=True)
        chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(("chunk", chunk))
            return stop.is_set()  # True asks llama.cpp to stop

        def work() -> None:
            try:
                result = self._call(server, request, on_chunk)
                chunks.put(("end", result))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
                chunks.put(("exc", exc))

        worker = threading.Thread(target=work, name="llamacpp-stream", daemon=True)
        worker.start()
        try:
            while True:
                kind, payload = chunks.get()
                if kind == "exc":
                    if isinstance(payload, RagError):
                        raise payload
                    raise RagError(f"llama.cpp failed while generating: {payload!r}") from payload
                if kind == "end":
                    self._raise_if_error(payload)
                    return
                delta = self._delta(payload)
                if delta:
                    yield delta
        finally:
            stop.set()
            # after an early close the worker ends at llama.cpp's next chunk; don't wait for it on error paths
            worker.join(timeout=30)

    @classmethod
    def _delta(cls, chunk: Any) -> str:
        if isinstance(chunk, (str, bytes)):
            import json

            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            text = text.strip()
            if text.startswith("data:"):
                text = text[5:].strip()
            if not text or text == "[DONE]":
                return ""
            chunk = json.loads(text)
        cls._raise_if_error(chunk)
        if not isinstance(chunk, dict):
            return ""
        choices = chunk.get("choices") or []
        if not choices:
            return ""
        delta = choices[0].get("delta") or {}
        return delta.get("content") or ""
