"""The offline answerer: quotes the passages' sentences that best answer the question, with citations.

No LLM. Each candidate sentence is scored by how many of the question's content words it covers
(lexical recall) and by the cosine between its embedding and the question's. When the best score is
below `generation.min_support`, it says plainly that the documents do not contain the answer.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.config import GenerationConfig
from rag.core.trace import GeneratorInfo
from rag.index.contracts import Embedder
from rag.text_units import Span, content_terms, sentences
from rag.types import Passage

NOT_FOUND = "The documents do not contain an answer to this question."
MIN_SENTENCE_TERMS = 2
FOLLOWER_RATIO = 0.85
_ATX_HEADING = re.compile(r"^#{1,6}\s")  # further sentences must score at least this share of the best one


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    passage: int
    span: Span
    lexical: float
    dense: float

    @property
    def score(self) -> float:
        return 0.5 * self.lexical + 0.5 * self.dense


class ExtractiveAnswerer:
    def __init__(
        self, config: GenerationConfig, embedder: Embedder, headings: Callable[[Passage, int], tuple[str, ...]] | None = None
    ) -> None:
        """`headings(passage, offset)` gives the heading path above a document offset: a sentence is read
        together with its section heading ("Released May 28." under "Tidewater 4.3.0")."""
        self.config = config
        self.embedder = embedder  # has .embed(list[str]) -> np.ndarray of unit vectors
        self.headings = headings

    def score_sentences(self, question: str, passages: list[Passage]) -> list[ScoredSentence]:
        terms = set(content_terms(question))
        candidates: list[tuple[int, Span, str]] = []
        for passage in passages:
            for span in sentences(passage.text, passage.start):
                if len(content_terms(span.text)) >= MIN_SENTENCE_TERMS and not is_label(span.text):
                    path = self.headings(passage, span.start) if self.headings else passage.heading_path
                    candidates.append((passage.number, span, path[-1] if path else ""))
        if not candidates:
            return []
        in_context = [f"{heading}: {span.text}" if heading else span.text for _, span, heading in candidates]
        vectors = self.embedder.embed([question] + in_context)
        cosines = np.clip(vectors[1:] @ vectors[0], 0.0, 1.0)
        scored = []
        for (number, span, heading), cosine in zip(candidates, cosines):
            own = set(content_terms(span.text))
            with_heading = own | set(content_terms(heading))
            lexical = (len(terms & own) + len(terms & with_heading)) / (2 * len(terms)) if terms else 0.0
            scored.append(ScoredSentence(number, span, lexical, float(cosine)))
        scored.sort(key=lambda s: -s.score)
        return scored

    def answer(self, question: str, passages: list[Passage]) -> tuple[str, GeneratorInfo]:
        """The answer text with [n] markers (one quoted sentence per line), and a trace."""
        scored = self.score_sentences(question, passages)
        trace = GeneratorInfo(
            answerer="extractive",
            top_sentences=[
                {"passage": s.passage, "text": s.span.text[:200], "lexical": round(s.lexical, 3), "dense": round(s.dense, 3)}
                for s in scored[:5]
            ],
        )
        if not scored or scored[0].score < self.config.min_support:
            trace.evidence = "weak"
            return NOT_FOUND, trace
        chosen = [scored[0]]
        for candidate in scored[1:]:
            if len(chosen) >= self.config.max_sentences:
                break
            if candidate.score >= max(self.config.min_support, FOLLOWER_RATIO * scored[0].score) and not any(
                _overlaps(candidate.span, c.span) for c in chosen
            ):
                chosen.append(candidate)
        trace.evidence = "strong"
        return "\n".join(f"{' '.join(s.span.text.split())} [{s.passage}]" for s in chosen), trace


class CachedEmbedder:
    """Remembers vectors by text (LRU, shared by every pipeline of the process that uses the same model):
    a server quotes the same documents' sentences again and again.

    Safe under per-document permissions: a request only ever looks up texts of passages its reader may
    see, and a hit returns a vector of the text it asked for, nothing else.
    """

    _memories: dict[str, "OrderedDict[str, np.ndarray]"] = {}
    _lock = threading.Lock()

    def __init__(self, embedder: Embedder, model_id: str, size: int = 20_000) -> None:
        self.embedder = embedder
        self.model_id = model_id
        self.size = size
        with self._lock:
            self._vectors = self._memories.setdefault(model_id, OrderedDict())

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in known:
                self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self.embedder.embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh):
                    known[text] = vector
                    self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.vstack([known[t] for t in texts])


def is_label(text: str) -> bool:
    """Headings and table header rows name a topic but state nothing, so they are never quoted as answers."""
    stripped = text.strip()
    if _ATX_HEADING.match(stripped):
        return True
    has_digit = any(ch.isdigit() for ch in stripped)
    ends_like_sentence = stripped[-1:] in ".!?:"
    return not has_digit and not ends_like_sentence and (len(stripped.split()) <= 10 or " | " in stripped)


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end
