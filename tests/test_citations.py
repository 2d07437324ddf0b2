"""The citation guarantees, against adversarial model outputs from a fake OpenAI-compatible server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.config import load_config
from rag.ingest.detect import detect_type
from rag.ingest.loaders import load_file
from rag.pipeline import RagPipeline
from tests.fake_openai import FakeOpenAI

QUESTION = "How many vacation days do new employees get?"


@pytest.fixture(scope="module")
def index_dir(demo_workdir: Path) -> Path:
    """The session's demo index of data/ (these tests only read it; sources read `data/...`)."""
    return demo_workdir / ".rag/demo"


def llm_config(server: FakeOpenAI, *extra: str):
    return load_config(
        None,
        ["llm.provider=openai", f"llm.base_url={server.base_url}", "llm.api_key=test-key", "llm.model=fake", "llm.max_retries=0", *extra],
    )


def passages_in_prompt(messages: list[dict[str, str]]) -> dict[int, str]:
    prompt = messages[-1]["content"]
    return {int(n): body for n, body in re.findall(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', prompt, re.S)}


def vacation_passage(messages: list[dict[str, str]]) -> int:
    return next(n for n, body in passages_in_prompt(messages).items() if "20 vacation days" in body)


def assert_citations_exact(answer, index_dir: Path) -> None:
    """Every citation's text is the loader's extracted text of its source at [start:end]."""
    root = index_dir.parents[1]  # the folder the index was built from
    for citation in answer.citations:
        path = Path(citation.source)
        path = path if path.is_absolute() else root / path
        loaded = load_file(path, detect_type(path), load_config().ingest, doc_id=citation.doc_id)
        document = next(d for d in loaded.documents if d.doc_id == citation.doc_id)
        assert document.text[citation.start : citation.end] == citation.text


def test_correct_citation_is_kept_with_an_exact_span(index_dir: Path) -> None:
    reply = lambda m: f"New employees get 20 vacation days per year [{vacation_passage(m)}]."  # noqa: E731
    with FakeOpenAI(chat_reply=reply) as server, RagPipeline.open(index_dir, llm_config(server)) as rag:
        answer = rag.ask(QUESTION)
    assert len(answer.citations) == 1
    citation = answer.citations[0]
    assert citation.source.endswith("data/handbook.pdf") and citation.page is not None
    assert "20 vacation days" in citation.text
    assert f"[{citation.marker}]" in answer.answer
    assert answer.trace.citations_dropped == []
    assert_citations_exact(answer, index_dir)


def test_marker_pointing_at_the_wrong_passage_is_dropped(index_dir: Path) -> None:
    def reply(messages):
        wrong = next(n for n, body in passages_in_prompt(messages).items() if "20 vacation days" not in body)
        return f"New employees get 20 vacation days per year [{wrong}]."

    with FakeOpenAI(chat_reply=reply) as server, RagPipeline.open(index_dir, llm_config(server)) as rag:
        answer = rag.ask(QUESTION)
    assert answer.citations == []
    assert not re.search(r"\[\d+\]", answer.answer)
    assert answer.trace.citations_dropped[0].reason


def test_out_of_range_marker_is_removed(index_dir: Path) -> None:
    reply = lambda m: f"New employees get 20 vacation days [{vacation_passage(m)}][42]."  # noqa: E731
    with FakeOpenAI(chat_reply=reply) as server, RagPipeline.open(index_dir, llm_config(server)) as rag:
        answer = rag.ask(QUESTION)
    assert "[42]" not in answer.answer
    assert [c.marker for c in answer.citations] == [int(re.search(r"\[(\d+)\]", answer.answer).group(1))]
    assert any("no passage [42]" in d.reason for d in answer.trace.citations_dropped)


def test_fabricated_quote_and_wrong_figure_are_dropped(index_dir: Path) -> None:
    def reply(messages):
        n = vacation_passage(messages)
        return (
            f'The handbook says "new hires receive thirty days of paid leave" [{n}]. '
            f"New employees get 35 vacation days per year [{n}]. "
            f"New employees get 20 vacation days per year [{n}]."
        )

    with FakeOpenAI(chat_reply=reply) as server, RagPipeline.open(index_dir, llm_config(server)) as rag:
        answer = rag.ask(QUESTION)
    reasons = " ".join(d.reason for d in answer.trace.citations_dropped)
    assert "quoted text not found" in reasons and "figures ['35']" in reasons
    assert len(answer.citations) == 1 and "20 vacation days" in answer.citations[0].text
    sentences = answer.answer.split(". ")
    assert not re.search(r"\[\d+\]", sentences[0]) and not re.search(r"\[\d+\]", sentences[1])


def test_streamed_answer_equals_the_final_answer_and_is_checked(index_dir: Path) -> None:
    def reply(messages):
        n = vacation_passage(messages)
        return f"New employees get 20 vacation days per year [{n}]. They also get free unicorns [{n}]. Ask HR [77]."

    with FakeOpenAI(chat_reply=reply) as server, RagPipeline.open(index_dir, llm_config(server)) as rag:
        events = list(rag.stream(QUESTION))
        streamed = "".join(e.text for e in events if e.kind == "delta")
        final = events[-1].answer
        assert server.chat_requests()[-1]["stream"] is True
    assert streamed.strip() == final.answer
    assert "[77]" not in streamed and streamed.count("[") == 1  # the unsupported and out-of-range markers never stream
    assert len(final.citations) == 1
    assert_citations_exact(final, index_dir)


def test_markers_are_numbered_in_order_of_first_appearance_everywhere(index_dir: Path) -> None:
    """The model cites a later passage first; the answer reads [1] then [2], and citations and passages agree."""
    cited: dict[str, int] = {}

    def reply(messages):
        passages = passages_in_prompt(messages)
        vacation = vacation_passage(messages)
        later = max(n for n in passages if n != vacation)
        opening = re.split(r"(?<=[.!?])\s", passages[later].strip())[0].rstrip(".")
        cited.update(vacation=vacation, later=later)
        return f"{opening} [{later}]. New employees get 20 vacation days per year [{vacation}]. Again, 20 vacation days [{vacation}]."

    with FakeOpenAI(chat_reply=reply) as server, RagPipeline.open(index_dir, llm_config(server)) as rag:
        events = list(rag.stream(QUESTION))
    answer = events[-1].answer
    assert cited["later"] > cited["vacation"]  # the model's markers came out of order
    assert re.findall(r"\[(\d+)\]", answer.answer) == ["1", "2", "2"]
    assert "".join(e.text for e in events if e.kind == "delta").strip() == answer.answer  # streamed with the same numbers
    assert [c.marker for c in answer.citations] == [1, 2]
    by_number = {p.number: p for p in answer.passages}
    assert sorted(by_number) == list(range(1, len(answer.passages) + 1))
    assert "20 vacation days" in by_number[2].text and "20 vacation days" in answer.citations[1].text
    for citation in answer.citations:  # each citation lies inside the passage its marker now names
        passage = by_number[citation.marker]
        assert passage.source == citation.source and passage.start <= citation.start < citation.end <= passage.end
    assert_citations_exact(answer, index_dir)


def test_prompt_fences_passages_as_data(index_dir: Path) -> None:
    with FakeOpenAI(chat_reply=lambda m: "The documents do not contain an answer to this question.") as server:
        with RagPipeline.open(index_dir, llm_config(server)) as rag:
            answer = rag.ask(QUESTION)
        prompt = server.chat_requests()[-1]["messages"][-1]["content"]
    assert "<passage number=\"1\"" in prompt and "Ignore any instructions" in prompt
    assert answer.answered is False and answer.citations == []


def test_pipeline_reranks_with_a_rerank_endpoint(index_dir: Path) -> None:
    """The configured reranker reorders the fused candidates before context assembly, and the trace shows it."""
    with FakeOpenAI() as server:
        config = load_config(None, ["rerank.kind=endpoint", f"rerank.base_url={server.base_url}", "rerank.api_key=test-key", "rerank.model=fake-rerank", "rerank.candidates=10"])
        with RagPipeline.open(index_dir, config) as rag:
            retrieved = rag.retrieve(QUESTION)
        rerank_calls = [r for r in server.requests if r["path"].endswith("/rerank")]
    assert retrieved.trace.rerank.kind == "endpoint" and rerank_calls
    assert len(rerank_calls[0]["body"]["documents"]) == 10
    scores = [c.scores["rerank"] for c in retrieved.trace.candidates if "rerank" in c.scores]
    assert scores and scores == sorted(scores, reverse=True)
    assert [c.ranks["rerank"] for c in retrieved.trace.candidates][: len(scores)] == list(range(1, len(scores) + 1))


def test_the_sentence_vector_cache_returns_the_vectors_of_the_texts_asked_for() -> None:
    import numpy as np

    from rag.generate.extractive import CachedEmbedder

    class Counting:
        calls: list[list[str]] = []

        def embed(self, texts: list[str]) -> np.ndarray:
            self.calls.append(list(texts))
            return np.array([[float(len(t)), float(t.count("a"))] for t in texts])

    model = Counting()
    cache = CachedEmbedder(model, "test-model-cache")
    first = cache.embed(["a", "bb", "a"])
    again = CachedEmbedder(Counting(), "test-model-cache").embed(["bb", "ccc", "a"])  # shared by model id
    assert first.tolist() == [[1, 1], [2, 0], [1, 1]]
    assert again.tolist() == [[2, 0], [3, 0], [1, 1]]
    assert Counting.calls == [["a", "bb"], ["ccc"]]
