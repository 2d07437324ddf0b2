"""End-to-end `rag ask` / `rag chat` on the sample corpus with the offline answerer, and their errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rag.config import load_config
from rag.ingest.detect import detect_type
from rag.ingest.loaders import load_file
from tests.helpers import free_port, run_rag

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def workdir(demo_workdir: Path) -> Path:
    """The session's demo index (data/ ingested once); these tests only read it."""
    return demo_workdir


def test_ask_json_cites_exact_spans_of_the_sources(workdir: Path) -> None:
    result = run_rag("ask", "How many vacation days do new employees get?", "--index", ".rag/demo", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"question", "answer", "citations", "trace"}
    assert "20 vacation days" in answer["answer"] and answer["answered"] is True
    assert answer["citations"], answer
    for citation in answer["citations"]:
        assert set(citation) == {"marker", "source", "page", "start", "end", "text"}
        assert f"[{citation['marker']}]" in answer["answer"]
        path = workdir / citation["source"]
        document = load_file(path, detect_type(path), load_config().ingest, doc_id=citation["source"]).documents[0]
        assert document.text[citation["start"] : citation["end"]] == citation["text"]
    assert answer["citations"][0]["source"] == "data/handbook.pdf" and answer["citations"][0]["page"] >= 1


def test_unanswerable_question_says_so(workdir: Path) -> None:
    result = run_rag("ask", "What is the name of the CEO's dog?", "--index", ".rag/demo", "--json", cwd=workdir)
    answer = json.loads(result.stdout)
    assert answer["answered"] is False and answer["citations"] == []
    assert "do not contain" in answer["answer"]


def test_explain_shows_the_retrieval_trace(workdir: Path) -> None:
    result = run_rag("ask", "What is the API rate limit on the Team plan?", "--index", ".rag/demo", "--explain", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Retrieval trace" in result.stdout and "bm25" in result.stdout and "dense" in result.stdout
    assert "Sources" in result.stdout and "data/api_reference.html" in result.stdout


def test_source_filter_restricts_retrieval(workdir: Path) -> None:
    result = run_rag("ask", "vacation days", "--index", ".rag/demo", "--json", "--source", "data/hr/**", cwd=workdir)
    answer = json.loads(result.stdout)
    assert answer["passages"] and all(p["source"].startswith("data/hr/") for p in answer["passages"])
    assert all(c.source.startswith("data/hr/") for c in answer["citations"])


def test_chat_follow_up_uses_the_previous_question_offline(workdir: Path) -> None:
    result = run_rag(
        "chat", "--index", ".rag/demo", "--set", "context.max_passages=2", cwd=workdir,
        stdin="What is the hotel cap in high-cost cities?\nAnd in other cities?\n",
    )
    assert result.returncode == 0, result.stderr
    answers = result.stdout.split("Sources")
    assert len(answers) == 3  # two answers, each with its sources
    assert "travel_policy.pdf" in answers[1] and "travel_policy.pdf" in answers[2]


def test_follow_up_is_searched_with_the_previous_question_without_an_llm(workdir: Path) -> None:
    from rag.pipeline import RagPipeline

    history = [
        {"role": "user", "content": "What is the hotel cap in high-cost cities?"},
        {"role": "assistant", "content": "..."},
    ]
    with RagPipeline.open(workdir / ".rag/demo", load_config()) as pipeline:
        retrieved = pipeline.retrieve("And in other cities?", history=history)
    assert retrieved.trace.queries == ["What is the hotel cap in other cities?"]  # the fragment replaces "in high-cost cities"
    assert "no LLM" in retrieved.trace.rewrite.notes["condense"]
    assert retrieved.passages[0].source == "data/travel_policy.pdf"


def test_missing_index_empty_index_and_unreachable_llm_are_clear(workdir: Path, tmp_path: Path) -> None:
    missing = run_rag("ask", "hello?", "--index", "nowhere", cwd=tmp_path)
    assert missing.returncode == 3 and "no index at nowhere" in missing.stderr and "Traceback" not in missing.stderr

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.md").write_text("# A\n\nsome text\n")
    assert run_rag("ingest", "empty", "--index", ".rag/empty", cwd=tmp_path).returncode == 0
    assert run_rag("remove", "empty/a.md", "--index", ".rag/empty", cwd=tmp_path).returncode == 0
    empty = run_rag("ask", "hello?", "--index", ".rag/empty", cwd=tmp_path)
    assert empty.returncode == 3 and "is empty" in empty.stderr and "rag ingest" in empty.stderr

    port = free_port()
    unreachable = run_rag(
        "ask", "How many vacation days?", "--index", ".rag/demo",
        "--set", "llm.provider=openai", "--set", f"llm.base_url=http://127.0.0.1:{port}/v1", "--set", "llm.max_retries=0",
        cwd=workdir,
    )
    assert unreachable.returncode == 3
    assert "cannot reach the chat endpoint" in unreachable.stderr and "llm.base_url" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_filters_that_cannot_match_are_usage_errors_that_say_why(workdir: Path) -> None:
    """Each used to answer "the documents do not contain an answer" with exit code 0."""
    question = ["ask", "How many vacation days do new employees get?", "--index", ".rag/demo"]
    unknown_type = run_rag(*question, "--type", "spreadsheet", cwd=workdir)
    assert unknown_type.returncode == 2 and "unknown file type 'spreadsheet'" in unknown_type.stderr
    assert "file types: pdf, docx, html, markdown, text, jsonl, external" in unknown_type.stderr
    misspelt_tag = run_rag(*question, "--tag", "hrr", cwd=workdir)
    assert misspelt_tag.returncode == 2
    assert "unknown tag 'hrr': no source in this index has it" in misspelt_tag.stderr and "rag ingest PATH --tag NAME" in misspelt_tag.stderr
    nothing = run_rag(*question, "--type", "docx", "--source", "data/*.pdf", cwd=workdir)
    assert nothing.returncode == 2 and nothing.stdout == ""
    assert "no indexed source matches the filters (source: data/*.pdf; file type: docx)" in nothing.stderr
    assert "docx 3" in nothing.stderr and "pdf 3" in nothing.stderr and "rag sources" in nothing.stderr
    chat = run_rag("chat", "--index", ".rag/demo", "--tag", "hrr", cwd=workdir, stdin="How many vacation days?\n")
    assert chat.returncode == 2 and "unknown tag 'hrr'" in chat.stderr
    matching = run_rag(*question, "--type", "pdf", "--source", "data/*.pdf", "--json", cwd=workdir)  # the control
    assert matching.returncode == 0 and "20 vacation days" in json.loads(matching.stdout)["answer"]


def test_answers_are_rendered_and_each_source_listed_once(workdir: Path) -> None:
    shown = run_rag("ask", "What does the Team plan cost?", "--index", ".rag/demo", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    answer, sources = shown.stdout.split("\nSources\n")
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", answer)]
    assert markers and markers == sorted(markers) and markers[0] == 1  # numbered in order of first appearance
    listed = re.findall(r"^  \[[\d, ]+\] (\S+)$", sources, re.M)
    assert listed and len(listed) == len(set(listed))
    assert "**" not in answer and not re.search(r"^- ", answer, re.M)
