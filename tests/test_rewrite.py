"""Query rewriting through the whole retrieve path, against the fake OpenAI-compatible server.

One server serves both the chat model (scripted per test) and the embeddings (a deterministic bag
of words), so what the rewriter asked and what was searched can both be checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.pipeline import RagPipeline
from rag.prompts import load_prompt, render
from tests.fake_openai import FakeOpenAI

FILES = {
    "vacation.txt": "Employees receive 20 vacation days per year. Vacation requests are approved by your manager in the HR portal.",
    "contractors.txt": "Contractors are not eligible for paid vacation days; contractors invoice only for the days they work.",
    "parking.txt": "The office garage has 40 parking spaces. Bicycle racks stand next to the main entrance.",
    "holidays.txt": "The 2024 holiday calendar lists eleven public holidays, including Boxing Day.",
    "telescope.txt": "The rooftop observatory telescope may be booked by staff on clear nights.",
}
HISTORY = [
    {"role": "user", "content": "How many vacation days do employees get?"},
    {"role": "assistant", "content": "Employees receive 20 vacation days per year [1]."},
]
FOLLOW_UP = "And contractors?"
STANDALONE = "Do contractors get paid vacation days?"
KINDS = ("condense", "multi_query", "hyde", "answer")


def _longest_literal(template: str) -> str:
    return max(re.split(r"\{\w+\}", template), key=len).strip()


MARKERS = {kind: _longest_literal(load_prompt(kind)) for kind in KINDS}


def prompt_kind(messages: list[dict[str, str]]) -> str:
    content = messages[-1]["content"]
    return next((kind for kind, marker in MARKERS.items() if marker in content), "unknown")


def script(**replies: str) -> Callable[[list[dict[str, str]]], str]:
    """A chat model that answers each prompt template with a fixed reply."""
    return lambda messages: replies.get(prompt_kind(messages), "UNEXPECTED PROMPT")


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI() as running:
        yield running


def embedding_settings(server: FakeOpenAI) -> list[str]:
    return [
        "embedding.provider=openai",
        f"embedding.base_url={server.base_url}",
        "embedding.api_key=test-key",
        "embedding.model=fake-embed",
        "embedding.max_retries=0",
    ]


def offline_config(server: FakeOpenAI, *extra: str):
    return load_config(None, [*embedding_settings(server), *extra])


def llm_config(server: FakeOpenAI, *extra: str):
    llm = ["llm.provider=openai", f"llm.base_url={server.base_url}", "llm.api_key=test-key", "llm.model=fake", "llm.max_retries=0"]
    return load_config(None, [*embedding_settings(server), *llm, *extra])


@pytest.fixture(scope="module")
def index_dir(server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("rewrite")
    for name, text in FILES.items():
        (root / "corpus").mkdir(exist_ok=True)
        (root / "corpus" / name).write_text(text + "\n", encoding="utf-8")
    with Index.open(root / "index", offline_config(server), writable=True) as index:
        report = Ingestor(index).ingest([str(root / "corpus")])
        assert report.new == len(FILES) and not report.failed
    return root / "index"


@pytest.fixture
def chat(server: FakeOpenAI):
    """The shared server with a fresh request log; set `chat.chat_reply` to script the model."""
    server.requests.clear()
    server.chat_reply = script()
    yield server
    server.chat_reply = script()


def kinds_sent(server: FakeOpenAI) -> list[str]:
    return [prompt_kind(request["messages"]) for request in server.chat_requests()]


def prompt_of(server: FakeOpenAI, kind: str) -> str:
    return next(r["messages"][-1]["content"] for r in server.chat_requests() if prompt_kind(r["messages"]) == kind)


def candidate_files(trace) -> list[str]:
    return [c.source.rsplit("/", 1)[-1] for c in trace.candidates]


# --- condensing a follow-up ----------------------------------------------------------------


def test_condense_sends_history_and_follow_up_and_searches_the_standalone_question(chat, index_dir) -> None:
    chat.chat_reply = script(condense=f'\n- "{STANDALONE}"\nI hope this helps.')
    with RagPipeline.open(index_dir, llm_config(chat)) as rag:
        retrieved = rag.retrieve(FOLLOW_UP, history=HISTORY)
    assert kinds_sent(chat) == ["condense"]
    prompt = prompt_of(chat, "condense")
    assert "user: How many vacation days do employees get?" in prompt
    assert "assistant: Employees receive 20 vacation days per year [1]." in prompt
    assert f"Last message: {FOLLOW_UP}" in prompt
    trace = retrieved.trace
    assert trace.queries == [STANDALONE]
    assert [step.query for step in trace.per_query] == [STANDALONE]
    assert trace.rewrite.standalone == retrieved.question == STANDALONE
    assert STANDALONE in trace.rewrite.notes["condense"]
    assert candidate_files(trace)[0] == "contractors.txt"


def test_the_answer_is_written_for_the_standalone_question(chat, index_dir) -> None:
    chat.chat_reply = script(condense=STANDALONE, answer="The documents do not contain an answer to this question.")
    with RagPipeline.open(index_dir, llm_config(chat)) as rag:
        answer = rag.ask(FOLLOW_UP, history=HISTORY)
    assert kinds_sent(chat) == ["condense", "answer"]
    assert prompt_of(chat, "answer").rstrip().endswith(f"Question: {STANDALONE}")
    assert answer.trace.queries == [STANDALONE]


def test_condense_sends_only_the_recent_history(chat, index_dir) -> None:
    history = []
    for turn in range(10):
        history += [{"role": "user", "content": f"question-{turn:02d}"}, {"role": "assistant", "content": f"reply-{turn:02d}"}]
    chat.chat_reply = script(condense=STANDALONE)
    with RagPipeline.open(index_dir, llm_config(chat)) as rag:
        rag.retrieve(FOLLOW_UP, history=history)
    prompt = prompt_of(chat, "condense")
    assert "question-04" in prompt and "reply-09" in prompt  # the last 6 turns
    assert "question-03" not in prompt and "reply-03" not in prompt


@pytest.mark.parametrize(
    ("reply", "standalone"),
    [
        (f'1. "{STANDALONE}"', STANDALONE),
        (f"* {STANDALONE}", STANDALONE),
        (f"\u2022 {STANDALONE}", STANDALONE),
        (f"2) {STANDALONE}", STANDALONE),
        (f'\n\n   "{STANDALONE}"   \nA second line the model should not have written.', STANDALONE),
        ("2024 holidays: how many public holidays are there?", "2024 holidays: how many public holidays are there?"),
        pytest.param(f"\u201c{STANDALONE}\u201d", STANDALONE, id="typographic-quotes"),
    ],
)
def test_model_reply_is_cleaned(chat, index_dir, reply: str, standalone: str) -> None:
    chat.chat_reply = script(condense=reply)
    with RagPipeline.open(index_dir, llm_config(chat)) as rag:
        retrieved = rag.retrieve(FOLLOW_UP, history=HISTORY)
    assert retrieved.trace.rewrite.standalone == standalone
    assert retrieved.trace.queries == [standalone]


def test_empty_condense_reply_keeps_the_follow_up(chat, index_dir) -> None:
    chat.chat_reply = script(condense="  \n\n")
    with RagPipeline.open(index_dir, llm_config(chat)) as rag:
        retrieved = rag.retrieve(FOLLOW_UP, history=HISTORY)
    assert retrieved.question == FOLLOW_UP and retrieved.trace.queries == [FOLLOW_UP]


# --- multi-query ---------------------------------------------------------------------------

BIKE = "Where can I park my bicycle?"
MULTI_REPLY = "\n".join(
    [
        f"1. {BIKE}",  # the question itself: not an extra query
        "2. Rooftop observatory telescope booking",
        "- Rooftop observatory telescope booking",  # a duplicate once the bullet is gone
        "",
        '3) "2024 holidays"',  # the leading year is part of the query, not numbering
        "4. bike racks near the entrance",  # over the count asked for
    ]
)


def test_multi_query_searches_the_question_and_the_model_queries(chat, index_dir) -> None:
    chat.chat_reply = script(multi_query=MULTI_REPLY)
    # BM25 only, so a document is a candidate only if some query's words match it
    settings = ("rewrite.multi_query=2", "retrieval.dense_top_k=0")
    with RagPipeline.open(index_dir, llm_config(chat, *settings)) as rag:
        retrieved = rag.retrieve(BIKE)
    assert kinds_sent(chat) == ["multi_query"]
    assert prompt_of(chat, "multi_query") == render("multi_query", count="2", question=BIKE)
    expected = [BIKE, "Rooftop observatory telescope booking", "2024 holidays"]
    trace = retrieved.trace
    assert trace.queries == expected
    assert [step.query for step in trace.per_query] == expected
    assert trace.rewrite.notes["multi_query"] == "2 extra queries"
    assert trace.rewrite.standalone == BIKE
    files = candidate_files(trace)
    assert {"parking.txt", "telescope.txt", "holidays.txt"} <= set(files)  # fused across all three queries


def test_without_multi_query_the_extra_documents_are_not_found(chat, index_dir) -> None:
    """The control for the test above: the question alone does not reach the telescope or holiday documents."""
    with RagPipeline.open(index_dir, llm_config(chat, "retrieval.dense_top_k=0")) as rag:
        retrieved = rag.retrieve(BIKE)
    assert kinds_sent(chat) == []
    files = candidate_files(retrieved.trace)
    assert "parking.txt" in files and "telescope.txt" not in files and "holidays.txt" not in files


# --- HyDE ----------------------------------------------------------------------------------

HYPOTHETICAL = "Bicycle racks for staff stand next to the main entrance of the office garage."


def test_hyde_adds_a_dense_search_with_a_hypothetical_answer(chat, index_dir) -> None:
    chat.chat_reply = script(hyde=f"  {HYPOTHETICAL}\n")
    question = "Where do I leave my bike?"
    with RagPipeline.open(index_dir, llm_config(chat, "rewrite.hyde=true")) as rag:
        retrieved = rag.retrieve(question)
        parking = next(c.chunk.chunk_id for c in retrieved.ranked if c.chunk.source.endswith("/parking.txt"))
    assert kinds_sent(chat) == ["hyde"]
    assert prompt_of(chat, "hyde") == render("hyde", question=question)
    assert HYPOTHETICAL in chat.embedded_texts()  # the passage itself is embedded, stripped
    trace = retrieved.trace
    assert trace.queries == [question]  # the passage is not searched as text
    steps = trace.per_query
    assert [step.query for step in steps] == [question, "(hypothetical answer)"]
    assert steps[1].bm25 == [] and steps[1].dense[0][0] == parking
    assert trace.rewrite.notes["hyde"]


def test_condensed_question_feeds_multi_query_and_hyde(chat, index_dir) -> None:
    chat.chat_reply = script(condense=STANDALONE, multi_query="contractor invoices\nvacation eligibility", hyde=HYPOTHETICAL)
    settings = ("rewrite.multi_query=2", "rewrite.hyde=true")
    with RagPipeline.open(index_dir, llm_config(chat, *settings)) as rag:
        retrieved = rag.retrieve(FOLLOW_UP, history=HISTORY)
    assert kinds_sent(chat) == ["condense", "multi_query", "hyde"]
    assert prompt_of(chat, "multi_query") == render("multi_query", count="2", question=STANDALONE)
    assert prompt_of(chat, "hyde") == render("hyde", question=STANDALONE)
    assert [step.query for step in retrieved.trace.per_query] == [
        STANDALONE,
        "contractor invoices",
        "vacation eligibility",
        "(hypothetical answer)",
    ]


# --- without an LLM ------------------------------------------------------------------------


def test_without_an_llm_each_step_is_skipped_with_a_note(chat, index_dir) -> None:
    settings = ("rewrite.multi_query=2", "rewrite.hyde=true")
    with RagPipeline.open(index_dir, offline_config(chat, *settings)) as rag:
        retrieved = rag.retrieve(FOLLOW_UP, history=HISTORY)
        answer = rag.ask(FOLLOW_UP, history=HISTORY)
    assert chat.chat_requests() == []
    notes = retrieved.trace.rewrite.notes
    for step in ("condense", "multi_query", "hyde"):
        assert "no LLM" in notes[step]
    combined = "How many vacation days do employees get contractors?"  # the fragment completes the previous question
    assert retrieved.trace.queries == [combined]
    assert [step.query for step in retrieved.trace.per_query] == [combined]  # no extra queries, no HyDE
    assert retrieved.question == combined  # the answer is written for the standalone question too
    assert "contractors.txt" in candidate_files(retrieved.trace)[:2]
    assert answer.trace.generator.answerer == "extractive"
    assert answer.trace.queries == [combined]


def test_without_an_llm_and_without_history_the_question_is_searched_as_is(chat, index_dir) -> None:
    with RagPipeline.open(index_dir, offline_config(chat, "rewrite.multi_query=3")) as rag:
        retrieved = rag.retrieve(BIKE)
    assert chat.chat_requests() == []
    assert retrieved.trace.queries == [BIKE]
    assert "condense" not in retrieved.trace.rewrite.notes and "no LLM" in retrieved.trace.rewrite.notes["multi_query"]
