"""Query rewriting before search: condensing follow-ups, multi-query expansion, HyDE.

Each step that needs an LLM is skipped without one, with a note in the trace. Condensing has an
offline fallback (rag.retrieve.offline_condense): a fragment ("and for contractors?") takes the place of
the matching phrase of the previous question, a question that points back ("when does it start?") gets
the previous question's topic words, and a new topic is asked alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.config import RewriteConfig
from rag.core.chat import ChatModel, Message
from rag.prompts import render
from rag.retrieve.offline_condense import condense_history, fragment_of

NO_LLM = "skipped: no LLM configured (llm.provider=none)"
MAX_HISTORY_TURNS = 6


@dataclass(slots=True)
class Rewritten:
    standalone: str  # the question the answer is written for
    queries: list[str]  # what is searched (standalone first)
    hypothetical: str | None = None  # HyDE passage, searched by its embedding
    focus: str | None = None  # offline, a fragment follow-up: what it asks anew (the answer must be about it)
    notes: dict[str, str] = field(default_factory=dict)


class QueryRewriter:
    def __init__(self, config: RewriteConfig, chat: ChatModel | None) -> None:
        self.config = config
        self.chat = chat

    def rewrite(self, question: str, history: list[Message] | None = None) -> Rewritten:
        result = Rewritten(standalone=question, queries=[question])
        user_turns = [m["content"] for m in history or [] if m.get("role") == "user"]
        if history and self.config.condense:
            if self.chat is None:
                if user_turns:
                    standalone, how = condense_history(question, user_turns)
                    result.standalone, result.queries = standalone, [standalone]
                    result.notes["condense"] = f"no LLM, {how}: {standalone}"
                    if how == "fragment":
                        result.focus = fragment_of(question)
            else:
                transcript = "\n".join(f"{m['role']}: {m['content']}" for m in history[-2 * MAX_HISTORY_TURNS :])
                condensed = _first_line(self.chat.complete([{"role": "user", "content": render("condense", history=transcript, question=question)}]))
                if condensed:
                    result.standalone = condensed
                    result.queries = [condensed]
                    result.notes["condense"] = f"rewritten as: {condensed}"
        if self.config.multi_query:
            if self.chat is None:
                result.notes["multi_query"] = NO_LLM
            else:
                prompt = render("multi_query", count=str(self.config.multi_query), question=result.standalone)
                lines = [_clean(line) for line in self.chat.complete([{"role": "user", "content": prompt}]).splitlines()]
                extra = [line for line in dict.fromkeys(lines) if line and line != result.standalone][: self.config.multi_query]
                result.queries += extra
                result.notes["multi_query"] = f"{len(extra)} extra queries"
        if self.config.hyde:
            if self.chat is None:
                result.notes["hyde"] = NO_LLM
            else:
                result.hypothetical = self.chat.complete([{"role": "user", "content": render("hyde", question=result.standalone)}]).strip()
                result.notes["hyde"] = "searched with a hypothetical answer"
        return result


def _first_line(text: str) -> str:
    return next((_clean(line) for line in text.splitlines() if line.strip()), "")


def _clean(line: str) -> str:
    """Drop list bullets or numbering ("1. ", "- ") and surrounding quotes a model may add."""
    return re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", line).strip().strip('"\u201c\u201d')
