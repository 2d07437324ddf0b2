"""The public Python API: `from rag import ...`, the one-line open, `rag.add` for paths and documents, the async
methods, one typed Query for ask/stream/retrieve, and the JSON shapes the CLI, the server and the UI share."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.pipeline import answer_to_json

QUESTION = "What is the on-call stipend?"


def test_import_rag_is_light_and_lists_the_public_names() -> None:
    code = "import sys, rag; assert not [m for m in sys.modules if m.startswith('rag.') and m != 'rag.version'], sys.modules.keys(); print(sorted(rag.__all__))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert {"open", "add", "RagPipeline", "Query", "Filters", "Document", "Answer", "Trace", "AnswerOut", "load_config"} <= set(eval(done.stdout))
    with pytest.raises(AttributeError):
        rag.no_such_name  # noqa: B018


def test_open_with_defaults_ask_by_keywords_or_by_query(demo_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo_workdir)
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    with rag.open(".rag/demo") as pipeline:
        by_keywords = pipeline.ask(QUESTION, top_k=3, filters=rag.Filters(file_types=("markdown",)))
        by_query = pipeline.ask(rag.Query(QUESTION, top_k=3, filters=rag.Filters(file_types=("markdown",))))
        nothing = pipeline.ask(QUESTION, filters=rag.Filters(sources=("nowhere/**",)))
    assert by_keywords.answer == by_query.answer and by_keywords.citations
    assert len(by_keywords.trace.candidates) <= 3 and all(c.source.endswith(".md") for c in by_keywords.trace.candidates)
    # the typed trace keeps the JSON the dict trace had: only what the stages filled in
    assert answer_to_json(nothing)["trace"] == {"filters": {"sources": ["nowhere/**"]}, "filters_match_nothing": True}
    shaped = answer_to_json(by_keywords)
    assert list(shaped) == ["question", "answer", "short_answer", "answered", "citations", "passages", "trace"]
    assert "source_key" not in shaped["passages"][0] and shaped["citations"][0]["text"] == by_keywords.citations[0].text
    assert {"rewrite", "queries", "per_query", "context", "candidates", "generator", "citations_dropped"} <= set(shaped["trace"])
    assert "rerank" not in shaped["trace"]  # no reranker configured: not recorded


def test_async_ask_and_stream_give_what_the_sync_ones_give(demo_workdir: Path) -> None:
    async def run() -> tuple[rag.Answer, list[rag.StreamEvent]]:
        with rag.open(demo_workdir / ".rag/demo", config=rag.load_config(None)) as pipeline:
            answer = await pipeline.aask(QUESTION)
            events = [event async for event in pipeline.astream(QUESTION)]
            return answer, events

    answer, events = asyncio.run(run())
    with rag.RagPipeline.open(demo_workdir / ".rag/demo") as pipeline:
        expected = pipeline.ask(QUESTION)
    assert answer.answer == expected.answer and answer.citations == expected.citations
    assert events[-1].kind == "done" and events[-1].answer is not None and events[-1].answer.answer == expected.answer
    assert "".join(e.text for e in events if e.kind == "delta").strip() == expected.answer


def test_a_script_calling_add_at_its_top_level_is_told_to_guard_it(tmp_path: Path, demo_workdir: Path) -> None:
    """The reader's child re-runs the caller's script (multiprocessing's spawn); the second `rag.add` must say why
    and how to fix it, not die on the index lock its parent holds."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import rag\n"
        f"report = rag.add({str(tmp_path / 'index')!r}, paths=[{str(demo_workdir / 'data' / 'oncall_policy.md')!r}])\n"
        "print('failed:', len(report.failed))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "was importing your script" in done.stderr and 'if __name__ == "__main__":' in done.stderr, done.stderr[-2000:]
    assert "failed: 1" in done.stdout  # the parent goes on and reports the file it could not read
    guarded = script.read_text().replace("report =", "if __name__ == '__main__':\n    report =").replace("print(", "    print(")
    script.write_text(guarded)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "failed: 0" in done.stdout and "importing your script" not in done.stderr, done.stderr[-2000:]


def test_add_files_and_documents_to_a_new_index(tmp_path: Path, demo_workdir: Path) -> None:
    index = tmp_path / "index"
    report = rag.add(index, paths=[demo_workdir / "data" / "oncall_policy.md"])
    assert (report.new, report.failed) == (1, []) and report.chunks_added > 0
    memo = rag.Document(doc_id="memo-7", text="The parking garage closes at 9 pm on weekdays.")
    both = rag.add(index, paths=[demo_workdir / "data" / "oncall_policy.md"], documents=[memo], source="memos")
    assert (both.unchanged, both.new) == (1, 1)  # the file was skipped as unchanged, the documents added
    with rag.open(index) as pipeline:
        answer = pipeline.ask("When does the parking garage close?")
    assert answer.citations and answer.citations[0].source == "memos"
    with pytest.raises(ValueError, match="nothing to ingest"):
        rag.add(index)
