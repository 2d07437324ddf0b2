"""The question-answering pipeline: rewrite -> hybrid search -> rerank -> context -> answer -> checked citations.

    with RagPipeline.open(Path(".rag/demo"), load_config()) as rag:
        answer = rag.ask("How many vacation days do new employees get?")
        for event in rag.stream("And after five years?", history=[...]):
            ...
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Unpack

from rag.config import RagConfig, load_config
from rag.core.tokens import count_tokens
from rag.errors import RagError
from rag.generate.citations import CitationChecker, CitationStream
from rag.generate.extractive import NOT_FOUND, CachedEmbedder, ExtractiveAnswerer
from rag.core.chat import ChatModel
from rag.core.results import AnswerOut
from rag.core.trace import Candidate, DroppedCitation, GeneratorInfo, RerankInfo, Rewrite, Trace
from rag.generate.llm import build_chat_model
from rag.generate.marker_order import MarkerOrder
from rag.index.store import Index
from rag.prompts import render
from rag.retrieve.context import ContextAssembler
from rag.retrieve.filter_check import check_filters, nothing_matches
from rag.retrieve.query import LOCAL, Query, QueryOptions
from rag.retrieve.rerank import ListwiseStats, Reranker, build_reranker
from rag.retrieve.rewrite import QueryRewriter
from rag.retrieve.search import HybridSearcher
from rag.types import Answer, Passage, ScoredChunk

__all__ = ["LOCAL", "Query", "RagPipeline", "Retrieved", "StreamEvent", "answer_to_json"]


@dataclass(slots=True)
class Retrieved:
    question: str  # standalone question
    ranked: list[ScoredChunk]
    passages: list[Passage]
    trace: Trace = field(default_factory=Trace)
    focus: str | None = None  # what a fragment follow-up asks anew (offline condensing), for the answerer
    # what the offline answerer reads: more chunks than are shown, with their neighbours (None: `passages`)
    answer_passages: list[Passage] | None = None


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
    def open(cls, location: str | os.PathLike[str], config: RagConfig | None = None) -> "RagPipeline":
        """The pipeline over the index at `location` (a folder, or a URL of another backend), read-only.

        `config`: default `load_config()` (built-in defaults, ./rag.yaml, RAG_* environment variables)."""
        config = config if config is not None else load_config()
        index = Index.open(location, config)
        try:
            return cls(index, config)
        except BaseException:
            index.close()
            raise

    def __enter__(self) -> "RagPipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the index (and the worker thread of the async methods, if they were used)."""
        worker = self.__dict__.pop("_worker", None)
        if worker is not None:
            worker.shutdown(wait=True)
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
        for name in ("assembler", "answer_assembler"):
            if name in self.__dict__:
                self.__dict__[name].forget_documents()

    @cached_property
    def answer_assembler(self) -> ContextAssembler:
        """The offline answerer's context: more chunks than the passages shown, each with its neighbours."""
        generation, context = self.config.generation, self.config.context
        wide = context.model_copy(update={
            "max_tokens": max(context.max_tokens, generation.extractive_max_tokens),
            "max_passages": 50,
            "neighbours": max(context.neighbours, generation.extractive_neighbours),
        })
        return ContextAssembler(self.index.manifest, wide, count_tokens)

    @cached_property
    def sentence_embedder(self) -> CachedEmbedder:
        """The query model with a memory of sentence vectors, for the extractive answerer."""
        return CachedEmbedder(self.index.query_embedder, self.index.indexed_embedding_config().model_id())

    @property
    def uses_llm(self) -> bool:
        mode = self.config.generation.mode
        if mode == "llm" and self.chat is None:
            raise RagError("generation.mode is llm but no LLM is configured", "set llm.provider (and llm.base_url / llm.model)")
        return not self._answers_offline

    @property
    def _answers_offline(self) -> bool:
        """The extractive answerer will answer (never raises, unlike `uses_llm` without an LLM)."""
        mode = self.config.generation.mode
        return mode == "extractive" or (mode == "auto" and self.chat is None)

    # --- stages ----------------------------------------------------------------------------
    def retrieve(self, query: Query | str, /, **options: Unpack[QueryOptions]) -> Retrieved:
        """Search and assemble the context for `query` (a Query, or the question with Query's fields as keywords)."""
        query = Query.of(query, options)
        started = time.perf_counter()
        self.index.sync()  # see what writers committed since the last question
        if check_filters(query.filters, self.index.manifest, query.access) == 0:  # unknown values raise FilterError
            return Retrieved(query.question, [], [], Trace(filters=query.filters.describe(), filters_match_nothing=True))
        rewritten = QueryRewriter(self.config.rewrite, self.chat).rewrite(query.question, query.history)
        extra = [self.index.query_embedder.embed([rewritten.hypothetical])[0]] if rewritten.hypothetical else None
        top_k = query.top_k or self.config.retrieval.top_k
        answer_k = max(top_k, self.config.generation.extractive_top_k) if self._answers_offline else top_k
        reranker = self.reranker
        limit = max(self.config.rerank.candidates, answer_k) if reranker else answer_k
        result = self.searcher.search(rewritten.queries, query.filters, extra_vectors=extra, limit=limit, access=query.access)
        ranked = result.chunks
        trace = result.trace
        trace.rewrite = Rewrite(standalone=rewritten.standalone, **rewritten.notes)
        if reranker is not None:
            ranked = reranker.rerank(rewritten.standalone, ranked)
            trace.rerank = RerankInfo(kind=self.config.rerank.kind, failed_windows=0, windows=None)
            if isinstance(reranker, ListwiseStats):
                trace.rerank = RerankInfo(kind=self.config.rerank.kind, failed_windows=reranker.last_failures, windows=reranker.last_windows)
        wide, ranked = ranked[:answer_k], ranked[:top_k]
        passages, trace.context = self.assembler.assemble(ranked, result.visible)
        answer_passages = self.answer_assembler.assemble(wide, result.visible)[0] if self._answers_offline else None
        trace.candidates = [
            Candidate(
                chunk_id=s.chunk.chunk_id,
                source=s.source_display,
                page=s.chunk.page,
                scores={k: round(v, 4) for k, v in s.scores.items()},
                ranks=s.ranks,
            )
            for s in ranked
        ]
        trace.retrieval_ms = round((time.perf_counter() - started) * 1000, 1)
        return Retrieved(rewritten.standalone, ranked, passages, trace, rewritten.focus, answer_passages)

    def ask(self, query: Query | str, /, **options: Unpack[QueryOptions]) -> Answer:
        """The checked answer to `query` (a Query, or the question with Query's fields as keywords)."""
        answer: Answer | None = None
        for event in self.stream(query, **options):
            if event.kind == "done":
                answer = event.answer
        assert answer is not None
        return answer

    def stream(self, query: Query | str, /, **options: Unpack[QueryOptions]) -> Generator[StreamEvent, None, None]:
        """Yield checked answer text sentence by sentence, then the final Answer."""
        query = Query.of(query, options)
        question = query.question
        if not question.strip():
            raise RagError("the question is empty", "ask something, e.g. rag ask \"How many vacation days do I get?\"")
        retrieved = self.retrieve(query)
        trace = retrieved.trace
        if trace.filters_match_nothing:  # said plainly, not "the documents do not contain an answer"
            message = nothing_matches(query.filters, query.access)
            yield StreamEvent("delta", message)
            yield StreamEvent("done", answer=Answer(question, message, [], [], trace, answered=False))
            return
        read = retrieved.passages  # what the answerer reads and cites
        if retrieved.passages and not self.uses_llm and retrieved.answer_passages:
            read = retrieved.answer_passages
        checker = CitationChecker(read, self.index.manifest, min_support=0.5)
        stream = CitationStream(checker)
        started = time.perf_counter()
        short = None
        if not retrieved.passages:
            deltas: Iterator[str] = iter([NOT_FOUND])
            trace.generator = GeneratorInfo(answerer="none", reason="no passages retrieved")
        elif self.uses_llm:
            deltas = self._llm_deltas(retrieved)
            trace.generator = GeneratorInfo(answerer="llm", model=self._llm().name)
        else:
            answerer = ExtractiveAnswerer(self.config.generation, self.sentence_embedder, self._heading_path)
            placer = CitationChecker(read, self.index.manifest)  # places the short answer in a citation
            extracted = answerer.answer(retrieved.question, read, placer, focus=retrieved.focus, shown=retrieved.passages)
            deltas, short = iter([extracted.text]), extracted.short
            trace.generator = GeneratorInfo.model_validate(extracted.trace)
        order = MarkerOrder()  # markers shown as [1], [2], ... in order of first appearance
        for delta in deltas:
            for checked in stream.feed(delta):
                if checked.text:
                    yield StreamEvent("delta", order.text(checked.text))
        for checked in stream.finish():
            if checked.text:
                yield StreamEvent("delta", order.text(checked.text))
        trace.generation_ms = round((time.perf_counter() - started) * 1000, 1)
        text = order.text(stream.text.strip())
        citations = order.citations(stream.citations)
        passages = order.passages(shown_passages(retrieved.passages, read, set(order.mapping)))
        trace.citations_dropped = [DroppedCitation.model_validate(d) for d in order.dropped(stream.dropped)]
        answered = bool(text) and NOT_FOUND.rstrip(".") not in text
        keep = answered and short is not None and short.marker in order.mapping and text.startswith(short.text)
        short = replace(short, marker=order.mapping[short.marker]) if keep and short is not None else None
        yield StreamEvent("done", answer=Answer(question, text or NOT_FOUND, citations, passages, trace, answered, short))

    # --- async ---------------------------------------------------------------------------------
    @cached_property
    def _worker(self) -> ThreadPoolExecutor:
        """The async methods run the pipeline here: one thread, so calls on one pipeline never overlap."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-pipeline")

    async def aask(self, query: Query | str, /, **options: Unpack[QueryOptions]) -> Answer:
        """`ask` without blocking the event loop (it runs on this pipeline's worker thread)."""
        return await asyncio.wrap_future(self._worker.submit(self.ask, Query.of(query, options)))

    async def aretrieve(self, query: Query | str, /, **options: Unpack[QueryOptions]) -> Retrieved:
        """`retrieve` without blocking the event loop."""
        return await asyncio.wrap_future(self._worker.submit(self.retrieve, Query.of(query, options)))

    async def astream(self, query: Query | str, /, **options: Unpack[QueryOptions]) -> AsyncIterator[StreamEvent]:
        """`stream` without blocking the event loop: each checked sentence as it comes, then the final Answer."""
        events = self.stream(Query.of(query, options))
        try:
            while (event := await asyncio.wrap_future(self._worker.submit(next, events, None))) is not None:
                yield event
        finally:
            await asyncio.wrap_future(self._worker.submit(events.close))

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


def shown_passages(display: list[Passage], read: list[Passage], cited: set[int]) -> list[Passage]:
    """The passages an answer shows: those it cites among the ones the answerer read, then the retrieved (display)
    passages that none of those covers, numbered after them (`read` is `display` when the answerer read no more)."""
    if read is display:
        return display
    chosen = [p for p in read if p.number in cited]
    covered = [p for p in display if not any(_overlap(c, p) for c in chosen)]
    return chosen + [replace(p, number=len(read) + i) for i, p in enumerate(covered, start=1)]


def _overlap(outer: Passage, inner: Passage) -> bool:
    return outer.source_key == inner.source_key and outer.doc_id == inner.doc_id and outer.start < inner.end and inner.start < outer.end


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The documented `--json` shape (`rag.core.results.AnswerOut`): question, answer, answered,
    citations[marker, source, page, start, end, text], passages, trace."""
    return AnswerOut.of(answer).to_json()
