"""A chat model for tests of streaming (`llm.provider=tests.held_chat:HeldChat`, resolved by the chat model
registry's dotted paths): it answers with two sentences quoted from passage 1 and waits between them for the test's
word in the file named by $RAG_TEST_HOLD, so a test sees the first sentence arrive while the answer is incomplete.

The word: `go` finishes the answer, `fail` raises a RagError (a failure after the stream began). Without a word
within HOLD_S the answer finishes anyway, so a broken test cannot hang the server. Once released, the model
writes the file `released(hold)`: a test that saw text while it is absent saw the answer before it was complete.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from rag.config import LLMBase
from rag.core.chat import Message
from rag.errors import RagError

HOLD_ENV = "RAG_TEST_HOLD"
HOLD_S = 120.0
PASSAGE_ONE = re.compile(r'<passage number="1"[^>]*>\n(.*?)\n</passage>', re.S)


class HeldChat:
    def __init__(self, config: LLMBase) -> None:
        self.name = "held-chat"
        self.hold = Path(os.environ[HOLD_ENV])

    def complete(self, messages: list[Message], max_tokens: int | None = None) -> str:
        return "".join(self.stream(messages, max_tokens))

    def stream(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        first, second = quoted_sentences(messages[-1]["content"])
        yield f"{first} [1]\n\n"  # a paragraph break ends the sentence: the server checks and sends it at once
        word = self._word()
        released(self.hold).write_text(word)
        if word == "fail":
            raise RagError("the held chat model was told to fail", "this is a test's doing")
        yield f"{second} [1]"

    def _word(self) -> str:
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:
            if self.hold.exists() and (word := self.hold.read_text().strip()):
                return word
            time.sleep(0.05)
        return "go"


def released(hold: Path) -> Path:
    return hold.with_name(hold.name + ".released")


def clear(hold: Path) -> None:
    """Before a question: no word yet, not released yet."""
    hold.unlink(missing_ok=True)
    released(hold).unlink(missing_ok=True)


def quoted_sentences(prompt: str) -> tuple[str, str]:
    """The first two prose sentences of passage 1 (lines of Markdown headings and tables left out)."""
    found = PASSAGE_ONE.search(prompt)
    text = " ".join(line for line in (found.group(1) if found else "").splitlines() if not line.lstrip().startswith(("#", "|")))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.split()) >= 4]
    if len(sentences) < 2:
        raise RagError("passage 1 has fewer than two sentences to quote", "ask about a passage of prose")
    return sentences[0], sentences[1]
