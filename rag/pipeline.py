"""The question-answering pipeline: rewrite -> hybrid search -> rerank -> context -> answer -> checked citations.

    with RagPipeline.open(Path(".rag/demo"), load_config()) as rag:
        answer = rag.ask("How many vacation days do new employees get?")
        for event in rag.stream("And after five years?", history=[...]):
            ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

from rag.config import RagConfig
from rag.core.tokens import count_tokens
from rag.errors import RagError
from rag.generate.citations import CitationChecker, CitationStream
from rag.generate.extractive import NOT_FOUND, CachedEmbedder, ExtractiveAnswerer
from rag.core.access import Access
from rag.core.chat import ChatModel, Message
from rag.generate.llm import build_chat_model
from rag.generate.marker_order import MarkerOrder
from rag.index.store import Index
from rag.prompts import render
from rag.retrieve.context import ContextAssembler
from rag.retrieve.filter_check import check_filters, nothing_matches
from rag.retrieve.filters import Filters
from rag.retrieve.rerank import ListwiseStats, Reranker, build_reranker
from rag.retrieve.rewrite import QueryRewriter
from rag.retrieve.search import HybridSearcher
from rag.types import Answer, Passage, ScoredChunk


LOCAL = Access.unrestricted()  # the local CLI and Python API read the index files directly, so everything


@dataclass(slots=True)
class Retrieved:
    question: str  # standalone question
    ranked: list[ScoredChunk]
    passages: list[Passage]
    trace: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StreamEvent:
    """`delta`: checked answer text to show; `done`: the final Answer (same text as the deltas joined)."""

    kind: str
    text: str = ""
    answer: Answer | None = None


class RagPipeline:
    def __init__(self, index: Index, config: RagConfig) -> None:
        self.index = index
        self.config = config
        if index.manifest.chunk_count() == 0:
            raise RagError(f"the index {index.location} is empty", f"add documents with `rag ingest PATH --index {index.location}`")
        index.on_change(self._forget_documents)

    @classmethod
    def open(cls, location: str | os.PathLike[str], config: RagConfig) -> "RagPipeline":
        """The pipeline over the index at `location` (a folder, or a URL of another backend), read-only."""
        index = Index.open(location, config)
        try:
            return cls(index, config)
        except BaseException:
            index.close()
            raise

    def __enter__(self) -> "RagPipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.index.close()

    # --- components ----------------------------------------------------------------------
    @cached_property
    def chat(self) -> ChatModel | None:
        return build_chat_model(self.config.llm)

    @cached_property
    def searcher(self) -> HybridSearcher:
        return HybridSearcher(self.index, self.config.retrieval)

    @cached_property
    def reranker(self) -> Reranker | None:
        return build_reranker(self.config.rerank, self.chat)

    @cached_property
    def assembler(self) -> ContextAssembler:
        return ContextAssembler(self.index.manifest, self.config.context, count_tokens)

    def _forget_documents(self) -> None:
        """A writer committed: cached document texts may be stale."""
        if "assembler" in self.__dict__:
            self.assembler.forget_documents()

    @cached_property
    def sentence_embedder(self) -> CachedEmbedder:
        """The query model with a memory of sentence vectors, for the extractive answerer."""
        return CachedEmbedder(self.index.query_embedder, self.index.indexed_embedding_config().model_id())

    @property
    def uses_llm(self) -> bool:
        mode = self.config.generation.mode
        if mode == "llm" and self.chat is None:
            raise RagError("generation.mode is llm but no LLM is configured", "set llm.provider (and llm.base_url / llm.model)")
        return mode == "llm" or (mode == "auto" and self.chat is not None)

    # --- stages ----------------------------------------------------------------------------
    def retrieve(
        self,
        question: str,
        history: list[Message] | None = None,
        filters: Filters = Filters(),
        access: Access = LOCAL,
        top_k: int | None = None,
    ) -> Retrieved:
        """`access`: whose permissions apply (the server passes the API key's; the local CLI reads everything).

        `top_k`: chunks kept for context (default retrieval.top_k)."""
        started = time.perf_counter()
        self.index.sync()  # see what writers committed since the last question
        if check_filters(filters, self.index.manifest, access) == 0:  # unknown values raise FilterError
            return Retrieved(question, [], [], {"filters": filters.describe(), "filters_match_nothing": True})
        rewritten = QueryRewriter(self.config.rewrite, self.chat).rewrite(question, history)
        extra = [self.index.query_embedder.embed([rewritten.hypothetical])[0]] if rewritten.hypothetical else None
        top_k = top_k or self.config.retrieval.top_k
        reranker = self.reranker
        limit = max(self.config.rerank.candidates, top_k) if reranker else top_k
        result = self.searcher.search(rewritten.queries, filters, extra_vectors=extra, limit=limit, access=access)
        ranked = result.chunks
        trace: dict[str, Any] = {"rewrite": {"standalone": rewritten.standalone, **rewritten.notes}, **result.trace}
        if reranker is not None:
            ranked = reranker.rerank(rewritten.standalone, ranked)
            trace["rerank"] = {"kind": self.config.rerank.kind, "failed_windows": 0, "windows": None}
            if isinstance(reranker, ListwiseStats):
                trace["rerank"].update(failed_windows=reranker.last_failures, windows=reranker.last_windows)
        ranked = ranked[:top_k]
        passages, context_trace = self.assembler.assemble(ranked, result.visible)
        trace["context"] = context_trace
        trace["candidates"] = [
            {
                "chunk_id": s.chunk.chunk_id,
                "source": s.source_display,
                "page": s.chunk.page,
                "scores": {k: round(v, 4) for k, v in s.scores.items()},
                "ranks": s.ranks,
            }
            for s in ranked
        ]
        trace["retrieval_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return Retrieved(rewritten.standalone, ranked, passages, trace)

    def ask(
        self,
        question: str,
        history: list[Message] | None = None,
        filters: Filters = Filters(),
        access: Access = LOCAL,
        top_k: int | None = None,
    ) -> Answer:
        answer: Answer | None = None
        for event in self.stream(question, history, filters, access, top_k):
            if event.kind == "done":
                answer = event.answer
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        history: list[Message] | None = None,
        filters: Filters = Filters(),
        access: Access = LOCAL,
        top_k: int | None = None,
    ) -> Iterator[StreamEvent]:
        """Yield checked answer text sentence by sentence, then the final Answer."""
        if not question.strip():
            raise RagError("the question is empty", "ask something, e.g. rag ask \"How many vacation days do I get?\"")
        retrieved = self.retrieve(question, history, filters, access, top_k)
        trace = retrieved.trace
        if trace.get("filters_match_nothing"):  # said plainly, not "the documents do not contain an answer"
            message = nothing_matches(filters, access)
            yield StreamEvent("delta", message)
            yield StreamEvent("done", answer=Answer(question, message, [], [], trace, answered=False))
            return
        checker = CitationChecker(retrieved.passages, self.index.manifest, min_support=0.5)
        stream = CitationStream(checker)
        started = time.perf_counter()
        short = None
        if not retrieved.passages:
            deltas: Iterator[str] = iter([NOT_FOUND])
            trace["generator"] = {"answerer": "none", "reason": "no passages retrieved"}
        elif self.uses_llm:
            deltas = self._llm_deltas(retrieved)
            trace["generator"] = {"answerer": "llm", "model": self._llm().name}
        else:
            answerer = ExtractiveAnswerer(self.config.generation, self.sentence_embedder, self._heading_path)
            extracted = answerer.answer(retrieved.question, retrieved.passages, CitationChecker(retrieved.passages, self.index.manifest))
            deltas, short = iter([extracted.text]), extracted.short
            trace["generator"] = extracted.trace
        order = MarkerOrder()  # markers shown as [1], [2], ... in order of first appearance
        for delta in deltas:
            for checked in stream.feed(delta):
                if checked.text:
                    yield StreamEvent("delta", order.text(checked.text))
        for checked in stream.finish():
            if checked.text:
                yield StreamEvent("delta", order.text(checked.text))
        trace["generation_ms"] = round((time.perf_counter() - started) * 1000, 1)
        text = order.text(stream.text.strip())
        citations, passages = order.citations(stream.citations), order.passages(retrieved.passages)
        trace["citations_dropped"] = order.dropped(stream.dropped)
        answered = bool(text) and NOT_FOUND.rstrip(".") not in text
        keep = answered and short is not None and short.marker in order.mapping and text.startswith(short.text)
        short = replace(short, marker=order.mapping[short.marker]) if keep and short is not None else None
        yield StreamEvent("done", answer=Answer(question, text or NOT_FOUND, citations, passages, trace, answered, short))

    def _heading_path(self, passage: Passage, offset: int) -> tuple[str, ...]:
        document = self.assembler.document(passage.source_key, passage.doc_id)
        if document is None:
            return passage.heading_path
        return next((s.heading_path for s in document.sections if s.start <= offset < s.end), passage.heading_path)

    def _llm_deltas(self, retrieved: Retrieved) -> Iterator[str]:
        fenced = "\n\n".join(
            f'<passage number="{p.number}" source="{p.source}"{f" page={p.page}" if p.page else ""}>\n'
            f"{p.text.replace('</passage>', '</ passage>')}\n</passage>"
            for p in retrieved.passages
        )
        prompt = render(self.config.generation.prompt, passages=fenced, question=retrieved.question)
        return self._llm().stream([{"role": "user", "content": prompt}])

    def _llm(self) -> ChatModel:
        """The chat model, when `uses_llm` said there is one."""
        if self.chat is None:
            raise RagError("generation needs an LLM but none is configured", "set llm.provider (and llm.base_url / llm.model)")
        return self.chat


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The documented `--json` shape: question, answer, citations[marker, source, page, start, end, text], trace."""
    return {
        "question": answer.question,
        "answer": answer.answer,
        "short_answer": asdict(answer.short_answer) if answer.short_answer else None,
        "answered": answer.answered,
        "citations": [
            {"marker": c.marker, "source": c.source, "page": c.page, "start": c.start, "end": c.end, "text": c.text}
            for c in answer.citations
        ],
        "passages": [
            {k: v for k, v in asdict(p).items() if k not in ("source_key",)} for p in answer.passages
        ],
        "trace": answer.trace,
    }
