"""The chat UI's Streamlit-free logic (ui/ui_support.py): escaping, citation links, the source window, settings as
config overrides, uploads, turns built from real answers."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from rag.config import load_config
from rag.errors import RagError
from rag.index.manifest import Manifest
from rag.index.store import MANIFEST_FILE
from rag.pipeline import RagPipeline, answer_to_json
from ui_support import (
    CallbackProgress,
    Settings,
    SourceView,
    answer_html,
    candidate_rows,
    chat_turn,
    chosen_filters,
    comparison_rows,
    highlighted_html,
    history_messages,
    known_indexes,
    list_runs,
    open_source_view,
    save_uploads,
    source_view,
)

MARK = re.compile(r'<mark id="rag-cited" class="rag-cited">(.*?)</mark>', re.S)


def test_answer_html_escapes_the_text_and_links_only_verified_markers() -> None:
    text = 'Use <script>alert(1)</script> & "quotes" [1]. Both agree [1, 2]. Unknown [7].\n\nSecond paragraph [2].'
    out = answer_html(text, {1: "data/a.pdf, page 2", 2: 'b "odd" <name>.md'})
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in out
    assert out.count('data-marker="1"') == 2 and out.count('data-marker="2"') == 2
    assert 'data-marker="7"' not in out and "[7]" in out  # no citation behind it: plain text
    assert 'title="b &quot;odd&quot; &lt;name&gt;.md"' in out
    assert out.count("<p>") == 2


def test_llm_answers_render_markdown_but_never_raw_html_or_links() -> None:
    text = "Use **the form** [1].\n\n- item <img src=x onerror=alert(1)> [2]\n- [click](http://evil.example)"
    out = answer_html(text, {1: "a.md", 2: "b.md"}, markdown=True)
    assert "<strong>the form</strong>" in out and "<li>" in out
    assert "<img" not in out and "&lt;img" in out and 'href="http://evil.example"' not in out
    assert out.count('class="rag-cite"') == 2
    verbatim = answer_html("Use **the form** [1].", {1: "a.md"})  # extractive quotes stay as written
    assert "**the form**" in verbatim and "<strong>" not in verbatim


def _view(text: str, start: int, end: int) -> SourceView:
    return SourceView("docs/x.md", 3, 5, ("A",), text, start, end)


def test_highlight_escapes_the_document_and_marks_exactly_the_span() -> None:
    text = "Intro <b>bold</b> & more.\nThe cited <span> sentence & end.\nAfter."
    start = text.index("The cited")
    end = text.index("\nAfter")
    out = highlighted_html(_view(text, start, end))
    assert "<b>bold</b>" not in out and "&lt;b&gt;bold&lt;/b&gt;" in out
    assert html.unescape(MARK.search(out).group(1)) == text[start:end]
    assert out.count("<mark") == 1 and "characters before" not in out


def test_long_documents_show_a_window_around_the_span() -> None:
    text = "".join(f"line {n} of filler text\n" for n in range(20_000))
    start = text.index("line 12000 ")
    end = start + len("line 12000 of filler text")
    out = highlighted_html(_view(text, start, end), window=2_000)
    assert html.unescape(MARK.search(out).group(1)) == text[start:end]
    assert len(out) < 4_000 and "characters before" in out and "characters after" in out


def test_settings_round_trip_through_config_overrides() -> None:
    settings = Settings.from_config(load_config())
    settings.top_k, settings.fusion, settings.condense, settings.multi_query = 3, "rrf", False, 2
    settings.llm_provider, settings.llm_base_url, settings.llm_model = "openai", "http://127.0.0.1:9/v1", "1e3"  # YAML would read 1e3 as a number
    settings.llm_api_key = "sk-test: with colon"
    config = load_config(None, settings.overrides())
    assert (config.retrieval.top_k, config.retrieval.fusion, config.rewrite.condense, config.rewrite.multi_query) == (3, "rrf", False, 2)
    assert (config.llm.provider, config.llm.base_url, config.llm.model) == ("openai", "http://127.0.0.1:9/v1", "1e3")
    assert config.llm.api_key.get_secret_value() == "sk-test: with colon"
    again = Settings.from_config(config)
    assert again.llm_base_url == settings.llm_base_url and again.top_k == 3 and again.llm_api_key == ""  # secrets never flow back


def test_blank_fields_keep_the_base_config() -> None:
    base = load_config(None, ["llm.model=from-file"])
    settings = Settings.from_config(base)
    settings.llm_model = "  "
    assert not any(o.startswith("llm.model=") for o in settings.overrides())
    assert not any(o.startswith("llm.api_key=") for o in settings.overrides())


def test_filter_widgets_become_search_filters() -> None:
    assert not chosen_filters([], [], " , \n").active
    filters = chosen_filters(["pdf"], ["legal"], "data/hr, data/*.pdf\n docs/** ")
    assert filters.sources == ("data/hr", "data/*.pdf", "docs/**")
    assert (filters.file_types, filters.tags) == (("pdf",), ("legal",))


def test_uploads_keep_only_a_safe_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = save_uploads(Path("idx"), [("../../evil.txt", b"a"), (".hidden.md", b"b"), ("C:\\docs\\win.txt", b"c")])
    assert paths == ["idx/uploads/evil.txt", "idx/uploads/hidden.md", "idx/uploads/win.txt"]
    assert (tmp_path / "idx/uploads/evil.txt").read_bytes() == b"a" and not (tmp_path / "evil.txt").exists()


def test_callback_progress_reports_growing_totals() -> None:
    seen: list[tuple[str, int, int]] = []
    progress = CallbackProgress(lambda *event: seen.append(event))
    progress.phase("Reading files", 2)
    progress.advance("Reading files")
    progress.phase("Embedding chunks", 0)
    progress.advance("Embedding chunks", 0, total=10)
    progress.advance("Embedding chunks", 10)
    assert seen == [("Reading files", 0, 2), ("Reading files", 1, 2), ("Embedding chunks", 0, 10), ("Embedding chunks", 10, 10)]


def test_known_indexes_lists_sibling_index_folders(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Manifest(tmp_path / name / MANIFEST_FILE).close()
    (tmp_path / "not-an-index").mkdir()
    assert known_indexes(tmp_path / "b") == [tmp_path / "b", tmp_path / "a"]


# --- against the real demo index -----------------------------------------------------------------
@pytest.fixture(scope="module")
def answered(demo_workdir: Path):
    with RagPipeline.open(demo_workdir / ".rag/demo", load_config()) as pipeline:
        answer = pipeline.ask("How many vacation days do new employees get?")
        turn = chat_turn(answer, pipeline.index.manifest)
    return answer, turn


def test_a_turn_keeps_citations_passages_and_resolved_trace(answered, demo_workdir: Path) -> None:
    answer, turn = answered
    json.dumps(answer_to_json(answer))  # the turn is built from the same answer the CLI prints
    assert turn.citations and set(turn.citations) <= set(turn.passage_refs)
    assert turn.labels()[1].startswith("data/handbook.pdf, page ")
    assert [p["passage"] for p in turn.passages] == [p.number for p in answer.passages]
    assert all(p["fused"] is not None for p in turn.passages) and any(p["cited"] for p in turn.passages)
    step = turn.retrievers[0]
    assert step["query"] == answer.question and step["dense"] and step["bm25"]
    assert all(row["source"].startswith("data/") for row in step["dense"] + step["bm25"])
    rows = candidate_rows(turn.trace)
    assert rows and {"dense", "bm25", "fused", "dense rank", "bm25 rank"} <= set(rows[0]) and "rerank" not in rows[0]
    assert history_messages([turn]) == [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.answer}]


def test_the_source_view_shows_the_stored_text_the_citation_indexes_into(answered, demo_workdir: Path) -> None:
    answer, turn = answered
    citation = answer.citations[0]
    view = open_source_view(demo_workdir / ".rag/demo", turn.citations[citation.marker])
    assert view.cited_text == citation.text and view.page == citation.page and view.page_count >= citation.page
    assert html.unescape(MARK.search(highlighted_html(view)).group(1)) == citation.text
    assert view.title == f"handbook.pdf · page {citation.page} of {view.page_count}"


def test_a_marker_citing_several_spans_opens_the_span_it_first_cites(answered, demo_workdir: Path) -> None:
    """An offline answer may quote two sentences of one passage, each with the same [n]: the marker's link must open
    the span its first appearance cites, not whichever came last."""
    answer, _ = answered
    first = answer.citations[0]
    later = replace(first, start=first.start + 1, text=first.text[1:])
    manifest = Manifest(demo_workdir / ".rag/demo" / MANIFEST_FILE)
    try:
        turn = chat_turn(replace(answer, citations=[first, later]), manifest)
    finally:
        manifest.close()
    assert (turn.citations[first.marker].start, turn.citations[first.marker].end) == (first.start, first.end)


def test_a_vanished_document_or_span_is_a_clear_error(answered, demo_workdir: Path, tmp_path: Path) -> None:
    _, turn = answered
    ref = turn.citations[1]
    manifest = Manifest(demo_workdir / ".rag/demo" / MANIFEST_FILE)
    try:
        with pytest.raises(RagError, match="no longer in the index"):
            source_view(manifest, ref.source, ref.source_key + ".gone", ref.doc_id, ref.start, ref.end, ref.page)
        with pytest.raises(RagError, match="span .* no longer exists"):
            source_view(manifest, ref.source, ref.source_key, ref.doc_id, ref.start, 10**9, ref.page)
    finally:
        manifest.close()
    with pytest.raises(RagError, match="no index"):
        open_source_view(tmp_path / "missing", ref)
    assert not (tmp_path / "missing").exists()  # looking did not create an index


def test_list_runs_and_comparison_rows(tmp_path: Path) -> None:
    from rag.evaluate.compare import compare_runs
    from tests.helpers import tiny_retrieval_run

    run = tiny_retrieval_run(tmp_path)
    (run.parent / "not-a-run").mkdir()
    assert list_runs(run.parent) == [run]
    rows = {r["metric"]: r for r in comparison_rows(compare_runs(run, None, "bm25", "hybrid"))}
    assert rows["Recall@10"]["delta B-A"] > 0  # hybrid finds q3, bm25 does not
    assert rows["Recall@10"]["B better / worse / tied"].startswith("1 / 0")


def test_comparison_defaults_pair_runs_of_the_same_kind_and_dataset() -> None:
    from ui_support import comparison_defaults

    metas = {
        "r5": {"kind": "meta", "dataset": {"name": "judge_labels"}, "configs": ["lexical", "offline"]},
        "r4": {"kind": "answers", "dataset": {"name": "gold"}, "configs": ["default"]},
        "r3": {"kind": "retrieval", "dataset": {"name": "scifact"}, "configs": ["default"]},
        "r2": {"kind": "answers", "dataset": {"name": "other"}, "configs": ["default"]},
        "r1": {"kind": "answers", "dataset": {"name": "gold"}, "configs": ["default"]},
    }
    runs = [Path(name) for name in metas]  # newest first, as list_runs gives them

    def meta_of(folder: Path) -> dict:
        return metas[folder.name]

    assert comparison_defaults(runs, meta_of) == (4, 1)  # A = r1, B = r4: answers on gold, not the newer meta run
    del metas["r1"]
    runs = [Path(name) for name in metas]
    assert comparison_defaults(runs, meta_of) is None  # nothing comparable (a meta run has no per-query metrics)
    metas["r3"]["configs"] = ["bm25", "hybrid"]
    assert comparison_defaults(runs, meta_of) == (2, 2)  # one run's two configs


def test_index_labels_fit_the_sidebar(tmp_path: Path) -> None:
    from ui_support import INDEX_LABEL_CHARS, index_label

    assert index_label(tmp_path / ".rag/demo", cwd=tmp_path) == ".rag/demo"
    deep = tmp_path / "a-rather-long-folder-name/and-another-one/.rag/team-docs"
    assert index_label(deep, cwd=Path("/")) == "…/.rag/team-docs" and len(index_label(deep)) <= INDEX_LABEL_CHARS
