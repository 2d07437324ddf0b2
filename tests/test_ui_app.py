"""The Streamlit app (ui/app.py) driven headless by streamlit.testing.v1.AppTest: each page and the error states.

The chat runs the real pipeline on the demo index; the LLM, where one is needed, is the stdlib fake OpenAI server.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from rag.config import load_config
from rag.index.manifest import Manifest
from rag.index.store import MANIFEST_FILE
from rag.pipeline import RagPipeline, answer_to_json
from ui_support import INDEX_ENV, RUNS_ENV, SETTINGS_ENV, index_stats
from tests.conftest import REPO
from tests.fake_openai import FakeOpenAI

pytest.importorskip("streamlit", reason="the chat UI needs the `ui` extra (streamlit)")
from streamlit.testing.v1 import AppTest  # noqa: E402

pytestmark = pytest.mark.slow

APP = REPO / "ui" / "app.py"
MARK = re.compile(r'<mark id="rag-cited" class="rag-cited">(.*?)</mark>', re.S)
PASSAGE = re.compile(r'<passage number="(\d+)"[^>]*>\n(.*?)\n</passage>', re.S)
QUESTION = "How many vacation days do new employees get?"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, demo_workdir: Path):
    """Start the app on an index (the demo index unless told otherwise) with optional `rag ui --set` values."""
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    monkeypatch.delenv(RUNS_ENV, raising=False)

    def start(index: Path | None = None, settings: list[str] | None = None) -> AppTest:
        monkeypatch.setenv(INDEX_ENV, str(index or demo_workdir / ".rag/demo"))
        monkeypatch.setenv(SETTINGS_ENV, json.dumps(settings or []))
        at = AppTest.from_file(str(APP), default_timeout=180).run()
        assert not at.exception, at.exception
        return at

    return start


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def answers(at: AppTest) -> list[str]:
    """The answer HTML given to each turn's citation component, oldest first."""
    return [json.loads(el.proto.json) for el in at.get("bidi_component") if el.proto.component_name == "rag_answer"]


def marked(at: AppTest) -> str:
    found = [MARK.search(h.value) for h in at.html]
    return html.unescape(next(m.group(1) for m in found if m))


def stored_text(index: Path, ref) -> str:
    manifest = Manifest(index / MANIFEST_FILE)
    try:
        return manifest.document(ref.source_key, ref.doc_id).text[ref.start : ref.end]
    finally:
        manifest.close()


def settings(at: AppTest, **values: object) -> AppTest:
    for name, value in values.items():
        at.get_by_key(f"setting_{name}").set_value(value)
    at.run()
    assert not at.exception, at.exception
    return at


# --- chat ----------------------------------------------------------------------------------------
def test_answer_has_clickable_citations_that_open_the_highlighted_source(app, demo_workdir: Path) -> None:
    at = ask(app(), QUESTION)
    [answer] = answers(at)
    assert "20 vacation days" in answer and 'class="rag-cite" data-marker="1"' in answer
    turn = at.session_state.turns[0]
    at.button(key="cite-0-1").click().run()
    assert not at.exception, at.exception
    index = demo_workdir / ".rag/demo"
    assert marked(at) == stored_text(index, turn.citations[1])
    with RagPipeline.open(index, load_config()) as pipeline:  # the same citation `rag ask --json` gives
        expected = answer_to_json(pipeline.ask(QUESTION))["citations"][0]
    assert marked(at) == expected["text"]
    header = at.html[0].value
    assert f"handbook.pdf · page {expected['page']} of " in header and "data/handbook.pdf" in header


def test_sources_panel_lists_every_passage_with_scores_and_opens_it(app, demo_workdir: Path) -> None:
    at = ask(app(), QUESTION)
    turn = at.session_state.turns[0]
    table = at.dataframe[0].value
    assert list(table["passage"]) == [p["passage"] for p in turn.passages] and len(table) == len(turn.passage_refs)
    assert {"source", "page", "score", "dense", "bm25", "fused", "cited"} <= set(table.columns)
    assert table["fused"].notna().all() and table["cited"].any()
    last = max(turn.passage_refs)
    at.button(key=f"passage-0-{last}").click().run()
    assert marked(at) == stored_text(demo_workdir / ".rag/demo", turn.passage_refs[last])


def test_retrieval_trace_shows_queries_and_each_retrievers_candidates(app) -> None:
    at = ask(app(), "What is the API rate limit on the Team plan?")
    assert "What is the API rate limit on the Team plan?" in [c.value for c in at.code]
    final, dense, bm25 = at.dataframe[1].value, at.dataframe[2].value, at.dataframe[3].value
    assert {"dense", "dense rank", "bm25", "bm25 rank", "fused", "fused rank"} <= set(final.columns)
    assert len(final) == load_config().retrieval.top_k
    assert list(dense["rank"][:3]) == [1, 2, 3] and (dense["score"].diff().dropna() <= 0).all()
    assert list(bm25["rank"][:3]) == [1, 2, 3] and bm25["source"].str.startswith("data/").all()


def test_settings_apply_to_the_next_question_and_survive_a_page_visit(app) -> None:
    at = settings(app(), top_k=2, fusion="rrf")
    at.switch_page("views/evaluation.py").run()
    at.switch_page("views/chat.py").run()
    assert (at.number_input(key="setting_top_k").value, at.selectbox(key="setting_fusion").value) == (2, "rrf")
    ask(at, QUESTION)
    turn = at.session_state.turns[0]
    assert len(turn.trace.candidates) == 2
    assert all(set(c.scores) >= {"fused"} for c in turn.trace.candidates)
    assert turn.trace.candidates[0].scores["fused"] < 0.1  # an RRF score (1/(60 + rank) sums), not a [0, 1] convex one


def test_sidebar_filters_narrow_the_search_and_are_shown(app) -> None:
    at = app()
    assert at.multiselect(key="setting_filter_file_types").options == ["docx", "html", "markdown", "pdf", "text"]
    at.multiselect(key="setting_filter_file_types").set_value(["pdf"]).run()
    assert any("Searching only file types: pdf" in c.value for c in at.caption)
    ask(at, QUESTION)
    pdf_only = at.session_state.turns[0]
    assert pdf_only.passages and all(p["source"].endswith(".pdf") for p in pdf_only.passages)
    assert all(c.source.endswith(".pdf") for c in pdf_only.trace.candidates)

    at.multiselect(key="setting_filter_file_types").set_value([]).run()
    at.text_input(key="setting_filter_sources").set_value("data/hr").run()
    ask(at, QUESTION)
    hr_only = at.session_state.turns[1]
    assert hr_only.passages and all(p["source"].startswith("data/hr/") for p in hr_only.passages)
    assert not any(c.value.startswith("Searching only file types") for c in at.caption)


def test_a_reranker_chosen_in_the_sidebar_shows_its_scores_in_the_trace(app) -> None:
    with FakeOpenAI() as server:
        at = settings(app(settings=["rerank.api_key=test-key", "rerank.max_retries=0"]), rerank="endpoint")
        at = settings(at, rerank_base_url=server.base_url, rerank_model="fake-rerank")
        ask(at, QUESTION)
        assert any(r["path"].endswith("/rerank") for r in server.requests)
    final = at.dataframe[1].value
    assert {"rerank", "rerank rank"} <= set(final.columns) and list(final["rerank rank"]) == list(range(1, len(final) + 1))
    assert (final["rerank"].diff().dropna() <= 0).all()  # the final order is the reranker's


def scripted_llm(messages: list[dict[str, str]]) -> str:
    """Condenses follow-ups; answers by quoting the passage line that holds the fact, with its marker."""
    prompt = messages[-1]["content"]
    if prompt.startswith("Rewrite the user's last message"):
        return "How many vacation days do employees with more than 5 years of service get?"
    wanted = "More than 5 years" if "more than 5 years of service" in prompt else "New employees therefore start"
    for number, text in PASSAGE.findall(prompt):
        for line in text.splitlines():
            if wanted in line:
                sentence = line.strip() if wanted.startswith("More") else line[line.index(wanted):].split(".")[0]
                return f"{sentence} [{number}]."
    return "The documents do not contain an answer to this question."


def test_follow_up_is_condensed_with_an_llm_set_in_the_sidebar(app) -> None:
    with FakeOpenAI(chat_reply=scripted_llm) as server:
        at = settings(app(settings=["llm.max_retries=0"]), llm_provider="openai")
        at = settings(at, llm_base_url=server.base_url, llm_model="fake", llm_api_key="test-key")
        ask(at, QUESTION)
        ask(at, "And after five years?")
    first, second = at.session_state.turns
    assert "20 vacation days" in first.answer and first.citations
    assert second.trace.rewrite.notes["condense"].startswith("rewritten as: How many vacation days do employees with more than 5 years")
    assert "25 days" in second.answer and second.citations, second.answer
    condense = [r for r in server.chat_requests() if r["messages"][-1]["content"].startswith("Rewrite the user's last message")]
    assert len(condense) == 1 and QUESTION in condense[0]["messages"][-1]["content"]  # the history reached the LLM
    assert "answerer: fake@" in " ".join(c.value for c in at.caption)


# --- error states --------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_llm_endpoint_is_a_clear_message_and_the_chat_goes_on(app) -> None:
    at = settings(app(settings=["llm.max_retries=0", "llm.timeout_s=5"]), llm_provider="openai")
    at = settings(at, llm_base_url=f"http://127.0.0.1:{closed_port()}/v1", llm_api_key="k")
    ask(at, QUESTION)
    errors = " ".join(e.value for e in at.error)
    assert "cannot reach the chat endpoint http://127.0.0.1:" in errors and "Fix:" in errors and "Settings in the sidebar" in errors, errors
    at = settings(at, llm_provider="none")
    ask(at, QUESTION)
    assert len(answers(at)) == 1 and "20 vacation days" in answers(at)[0]  # the error turn stays, the next question works


def test_incomplete_settings_are_explained_not_crashed_on(app) -> None:
    at = settings(app(), rerank="cross-encoder")  # no model folder given
    ask(at, QUESTION)
    errors = " ".join(e.value for e in at.error)
    assert "rerank.model_path is not set" in errors and "Settings in the sidebar" in errors


def test_missing_index_then_created_empty_index_say_what_to_do(app, tmp_path: Path) -> None:
    at = app(index=tmp_path / "fresh")
    assert any("There is no index at" in i.value for i in at.info)
    assert at.chat_input[0].proto.disabled
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("not an index")
    at.text_input(key="new_index_folder").set_value(str(tmp_path / "busy")).run()
    at.button(key="create_index").click().run()
    assert any("exists and is not an index" in e.value for e in at.error) and not (tmp_path / "busy" / MANIFEST_FILE).exists()
    at.text_input(key="new_index_folder").set_value(str(tmp_path / "made")).run()
    at.button(key="create_index").click().run()
    assert not at.exception, at.exception
    assert at.session_state.index_dir == str(tmp_path / "made") and index_stats(tmp_path / "made").chunks == 0
    assert any("is empty" in i.value for i in at.info) and at.chat_input[0].proto.disabled


def test_upload_ingests_good_files_and_reports_the_corrupt_one(app, tmp_path: Path) -> None:
    at = app(index=tmp_path / "uploaded")
    pdf = (REPO / "data" / "handbook.pdf").read_bytes()
    at.sidebar.file_uploader[0].set_value([
        ("parking.md", b"# Parking\n\nVisitors park in the blue garage on level 3; the code is 4471.\n", "text/markdown"),
        ("handbook.pdf", pdf, "application/pdf"),
        ("broken.pdf", pdf[:900], "application/pdf"),  # the header survives, the rest is cut off
    ])
    next(b for b in at.button if b.label == "Ingest").click().run()
    assert not at.exception, at.exception
    failed = [e.value for e in at.sidebar.error]
    assert len(failed) == 1 and "broken.pdf" in failed[0] and "not ingested" in failed[0]
    assert any("2 new" in w.value and "1 failed" in w.value for w in at.sidebar.warning)
    assert index_stats(tmp_path / "uploaded").sources == 2
    ask(at, "Where do visitors park?")
    turn = at.session_state.turns[0]
    assert "blue garage" in turn.answer and turn.citations[1].source.endswith("uploads/parking.md")


def test_questions_waiting_when_a_run_was_interrupted_are_all_answered_in_order(app) -> None:
    """Asking while an answer streams stops that run; both questions stay pending and are answered, none is lost."""
    at = app()
    at.session_state["pending"] = [QUESTION, "What is the API rate limit on the Team plan?"]
    at.run()
    assert not at.exception, at.exception
    assert [t.question for t in at.session_state.turns] == [QUESTION, "What is the API rate limit on the Team plan?"]
    assert at.session_state.pending == [] and len(answers(at)) == 2


def test_the_index_picker_shows_a_short_name_and_the_full_path(app, demo_workdir: Path) -> None:
    at = app()
    picker = next(s for s in at.selectbox if s.label == "Index folder")
    full = (demo_workdir / ".rag/demo").resolve().as_posix()
    assert len(full) > 28 and picker.options == ["…/.rag/demo"]  # a long path would be cut off in the sidebar
    assert full in [c.value.replace("\\", "") for c in at.caption]


def test_trace_tables_show_a_dash_where_a_value_does_not_apply(app) -> None:
    at = ask(app(), "What is the API rate limit on the Team plan?")
    passages = at.dataframe[0].value
    assert passages["page"].isna().any() and passages["rerank"].isna().all()  # an HTML source has no page; no reranker ran
    assert {table.proto.placeholder for table in at.dataframe} == {"–"}  # shown as a dash, not "None"


def test_filters_that_match_nothing_are_said_and_no_question_is_sent(app) -> None:
    at = app()
    at.text_input(key="setting_filter_sources").set_value("data/nowhere/**").run()
    assert any("No indexed document matches these filters" in w.value for w in at.warning)
    assert at.chat_input[0].disabled
    at.text_input(key="setting_filter_sources").set_value("data/hr").run()
    assert any("(2 of 16 sources)" in c.value for c in at.caption) and not at.chat_input[0].disabled


# --- evaluation ----------------------------------------------------------------------------------
def test_evaluation_page_plots_recorded_runs(app) -> None:
    at = app()
    at.switch_page("views/evaluation.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Evaluation runs"
    shown = at.multiselect[0].value
    assert shown and all((REPO / "eval" / "runs" / p.name).is_dir() for p in shown)
    assert len(at.image) >= 2  # metric plots drawn by rag.evaluate.report
    metrics = at.dataframe[0].value
    assert "nDCG@10" in metrics.columns or "faithfulness" in metrics.columns


def test_evaluation_page_compares_two_configs(app, tmp_path: Path) -> None:
    from tests.helpers import tiny_retrieval_run

    run = tiny_retrieval_run(tmp_path)
    (run.parent / "corrupt").mkdir()
    (run.parent / "corrupt" / "per_query.jsonl").write_text("{not json\n")
    at = app()
    at.switch_page("views/evaluation.py").run()
    at.text_input(key="runs_folder").set_value(str(run.parent)).run()
    at.multiselect[0].set_value([run, run.parent / "corrupt"]).run()
    assert any("Cannot read this run" in e.value for e in at.error)  # a broken run is reported, the page goes on
    at.selectbox(key="compare_run_A").set_value(run).run()
    at.selectbox(key="compare_run_B").set_value(run).run()
    assert (at.selectbox(key=f"compare_config_A_{run.name}").value, at.selectbox(key=f"compare_config_B_{run.name}").value) == ("bm25", "hybrid")
    next(b for b in at.button if b.label == "Compare").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value.set_index("metric")
    assert table.loc["Recall@10", "delta B-A"] > 0 and table.loc["Recall@10", "B better / worse / tied"].startswith("1 / 0")


def test_the_comparison_starts_with_two_runs_of_one_kind(app, tmp_path: Path) -> None:
    """The newest run is a judge meta-evaluation: the default pair is the two answer runs, never meta with answers."""
    from tests.helpers import recorded_answer_run

    answers_run = recorded_answer_run()
    meta_run = next(p for p in (REPO / "eval" / "runs").iterdir() if p.name.endswith("-meta"))
    for name, source in (("20270103T000000Z-meta", meta_run), ("20270102T000000Z-answers", answers_run),
                         ("20270101T500000Z-meta", meta_run), ("20270101T000000Z-answers", answers_run)):
        shutil.copytree(source, tmp_path / name)
    at = app()
    at.switch_page("views/evaluation.py").run()
    at.text_input(key="runs_folder").set_value(str(tmp_path)).run()
    assert not at.exception, at.exception
    chosen = (at.selectbox(key="compare_run_A").value.name, at.selectbox(key="compare_run_B").value.name)
    assert chosen == ("20270101T000000Z-answers", "20270102T000000Z-answers")


def test_evaluation_page_keeps_the_queries_of_an_answer_run_apart(app, tmp_path: Path) -> None:
    from tests.helpers import recorded_answer_run

    recorded = recorded_answer_run()
    questions = json.loads((recorded / "run.json").read_text())["dataset"]["questions"]
    run = tmp_path / recorded.name
    shutil.copytree(recorded, run)
    at = app()
    at.switch_page("views/evaluation.py").run()
    at.text_input(key="runs_folder").set_value(str(tmp_path)).run()
    assert not at.exception, at.exception
    assert at.multiselect[0].value == [run] and len(at.image) >= 2
    at.selectbox(key="compare_run_A").set_value(run).run()
    at.selectbox(key="compare_run_B").set_value(run).run()
    next(b for b in at.button if b.label == "Compare").click().run()
    assert not at.exception, at.exception
    assert any(f"{questions} shared queries" in c.value for c in at.caption)
    table = at.dataframe[-1].value.set_index("metric")
    assert table.loc["answer_correctness", "n"] >= 20 and table.loc["answer_correctness", "delta B-A"] == 0
