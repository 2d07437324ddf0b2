"""Metadata filters: resolving globs, file types and tags to sources, and both retrievers honouring them.

The index is built from relative paths (as a user would type them), with tags given at ingest.
Embeddings come from the fake OpenAI-compatible server (a deterministic bag of words), which stays
up for the whole module because queries are embedded with the model the index was built with.
"""

from __future__ import annotations

import os
import numpy as np
import pytest

from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.pipeline import RagPipeline
from rag.retrieve.filters import Filters, resolve
from rag.retrieve.access import Access
from rag.retrieve.search import HybridSearcher
from tests.helpers import fake_endpoint_config
from tests.fake_openai import FakeOpenAI, bag_of_words_vector

FILES = {
    "corpus/handbook.md": "# Handbook\n\nNew employees get 20 vacation days per year. Vacation requests go through the HR portal.\n",
    "corpus/notes.txt": "Engineering notes: the build server restarts every night and deploys happen on Tuesdays.\n",
    "corpus/hr/benefits.md": "# Benefits\n\nThe dental plan and the vacation carry-over rules are described here.\n",
    "corpus/hr/sub/dental.txt": "Dental coverage includes two cleanings per year and one x-ray.\n",
    "corpus/hrx/payroll.md": "# Payroll\n\nSalaries are paid on the last working day of the month.\n",
    "corpus/eng/zebra.txt": "The zebra crossing outside the office has faded stripes. The zebra mascot appears on vacation posters.\n",
}
# (paths given to one ingest run, tags for them)
INGESTS = [
    (["corpus/handbook.md", "corpus/hr/benefits.md"], ["hr"]),
    (["corpus/hr/sub"], ["hr", "health"]),
    (["corpus/notes.txt", "corpus/eng"], ["eng"]),
    (["corpus/hrx"], ["finance"]),
]
ZEBRA = "corpus/eng/zebra.txt"


def _config(base_url: str, *extra: str):
    return fake_endpoint_config(base_url, "retrieval.top_k=50", *extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("filters")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    with FakeOpenAI() as server:
        config = _config(server.base_url)
        previous = os.getcwd()
        os.chdir(root)  # ingest relative paths, so the display paths are "corpus/..."
        try:
            with Index.open(root / "index", config, writable=True) as index:
                for paths, tags in INGESTS:
                    report = Ingestor(index, tags=tags).ingest(paths)
                    assert not report.failed and not report.skipped
        finally:
            os.chdir(previous)
        yield root, server


@pytest.fixture(scope="module")
def index(built):
    root, server = built
    with Index.open(root / "index", _config(server.base_url)) as opened:
        yield opened


def display_of(index: Index) -> dict[str, str]:
    return {r.path: r.display_path for r in index.manifest.sources()}


def allowed_names(index: Index, **filters) -> set[str] | None:
    allowed = resolve(Filters(**{k: tuple(v) for k, v in filters.items()}), index.manifest)
    if allowed is None:
        return None
    expected_ids = set().union(*(index.manifest.chunk_ids_of(p) for p in allowed.sources)) if allowed.sources else set()
    assert allowed.chunk_ids == expected_ids
    return {display_of(index)[p] for p in allowed.sources}


def chunk_source_names(index: Index, chunk_ids) -> set[str]:
    display = display_of(index)
    return {display[c.source] for c in index.manifest.chunks_by_id(list(chunk_ids))}


# --- resolving filters to sources ---------------------------------------------------------


def test_index_has_the_expected_sources_and_tags(index: Index) -> None:
    records = {r.display_path: r for r in index.manifest.sources()}
    assert set(records) == set(FILES)
    assert records["corpus/hr/sub/dental.txt"].tag_list == ["health", "hr"]
    assert records[ZEBRA].tag_list == ["eng"] and records[ZEBRA].file_type == "text"


def test_no_filters_means_everything(index: Index) -> None:
    assert allowed_names(index) is None
    assert not Filters().active


def test_star_glob_matches_files_in_that_folder(index: Index) -> None:
    names = allowed_names(index, sources=["corpus/*.md"])
    assert "corpus/handbook.md" in names
    assert not any(name.endswith(".txt") for name in names)


def test_star_glob_does_not_descend_into_subfolders(index: Index) -> None:
    """`*` stays within one folder (an fnmatch-based glob let it cross '/', so it acted like `**`)."""
    assert allowed_names(index, sources=["corpus/*.md"]) == {"corpus/handbook.md"}
    assert allowed_names(index, sources=["corpus/*/*.md"]) == {"corpus/hr/benefits.md", "corpus/hrx/payroll.md"}
    assert allowed_names(index, sources=["corpus/**/*.txt"]) == {"corpus/notes.txt", "corpus/hr/sub/dental.txt", ZEBRA}


def test_double_star_glob_matches_nested_folders(index: Index) -> None:
    expected = {"corpus/hr/benefits.md", "corpus/hr/sub/dental.txt"}
    assert allowed_names(index, sources=["corpus/hr/**"]) == expected
    assert allowed_names(index, sources=["corpus/hr/sub/**"]) == {"corpus/hr/sub/dental.txt"}


@pytest.mark.parametrize("folder", ["corpus/hr", "corpus/hr/"])
def test_bare_folder_matches_everything_under_it_but_not_a_sibling_prefix(index: Index, folder: str) -> None:
    assert allowed_names(index, sources=[folder]) == {"corpus/hr/benefits.md", "corpus/hr/sub/dental.txt"}  # not corpus/hrx/


def test_absolute_paths_and_several_globs(index: Index, built) -> None:
    root, _ = built
    assert allowed_names(index, sources=[(root / "corpus" / "eng").as_posix()]) == {ZEBRA}
    assert allowed_names(index, sources=[(root / "corpus" / "hrx").as_posix() + "/*.md"]) == {"corpus/hrx/payroll.md"}
    assert allowed_names(index, sources=["corpus/eng/**", "corpus/notes.txt"]) == {ZEBRA, "corpus/notes.txt"}


def test_file_types(index: Index) -> None:
    assert allowed_names(index, file_types=["markdown"]) == {"corpus/handbook.md", "corpus/hr/benefits.md", "corpus/hrx/payroll.md"}
    assert allowed_names(index, file_types=["text"]) == {"corpus/notes.txt", "corpus/hr/sub/dental.txt", ZEBRA}
    assert allowed_names(index, file_types=["pdf"]) == set()


def test_tags_match_any(index: Index) -> None:
    assert allowed_names(index, tags=["health"]) == {"corpus/hr/sub/dental.txt"}
    assert allowed_names(index, tags=["eng", "finance"]) == {"corpus/notes.txt", ZEBRA, "corpus/hrx/payroll.md"}
    assert allowed_names(index, tags=["nope"]) == set()


def test_different_fields_combine_with_and(index: Index) -> None:
    assert allowed_names(index, sources=["corpus/hr/**"], file_types=["text"]) == {"corpus/hr/sub/dental.txt"}
    assert allowed_names(index, tags=["hr"], file_types=["markdown"]) == {"corpus/handbook.md", "corpus/hr/benefits.md"}
    assert allowed_names(index, tags=["eng"], sources=["corpus/hr"]) == set()


# --- retrieval honours the filters ---------------------------------------------------------


@pytest.fixture(params=["convex", "rrf"])
def searcher(request, index: Index, built) -> HybridSearcher:
    _, server = built
    return HybridSearcher(index, _config(server.base_url, f"retrieval.fusion={request.param}").retrieval)


def test_unfiltered_search_finds_the_zebra_document(index: Index, searcher: HybridSearcher) -> None:
    """The control for the filtered tests: without a filter, both retrievers rank the zebra chunk first."""
    result = searcher.search(["zebra stripes"], access=Access.unrestricted())
    zebra_ids = index.manifest.chunk_ids_of(next(p for p, d in display_of(index).items() if d == ZEBRA))
    step = result.trace.per_query[0]
    assert step.bm25 and step.bm25[0][0] in zebra_ids
    assert step.dense and step.dense[0][0] in zebra_ids
    assert result.chunks[0].chunk.chunk_id in zebra_ids


@pytest.mark.parametrize(
    "filters",
    [Filters(tags=("hr",)), Filters(sources=("corpus/hr/**", "corpus/handbook.md")), Filters(file_types=("markdown",))],
    ids=["tags", "sources", "file_types"],
)
@pytest.mark.parametrize("query", ["zebra stripes", "zebra vacation"])
def test_filtered_search_never_leaves_the_allowed_sources(index: Index, searcher: HybridSearcher, filters: Filters, query: str) -> None:
    allowed = resolve(filters, index.manifest)
    assert allowed is not None and allowed.chunk_ids
    vector = np.array(bag_of_words_vector("the zebra crossing has faded stripes"), dtype=np.float32)  # a HyDE-like vector
    result = searcher.search([query], filters, extra_vectors=[vector], access=Access.unrestricted())
    assert result.chunks, "the allowed sources still have candidates"
    assert {s.chunk.chunk_id for s in result.chunks} <= allowed.chunk_ids
    assert ZEBRA not in {s.source_display for s in result.chunks}
    lexical, dense = result.trace.per_query[0].bm25, result.trace.per_query[0].dense
    hypothetical = result.trace.per_query[1]
    assert hypothetical.query == "(hypothetical answer)"
    assert dense and hypothetical.dense  # dense still answers, from allowed chunks only
    for ranked in (lexical, dense, hypothetical.dense):
        assert {chunk_id for chunk_id, _ in ranked} <= allowed.chunk_ids
    if "vacation" in query:
        # BM25 matches "vacation" in allowed documents, and never the zebra document that also has it
        assert lexical and ZEBRA not in chunk_source_names(index, [chunk_id for chunk_id, _ in lexical])
    else:
        assert lexical == []  # "zebra" and "stripes" occur only in a disallowed document


def test_filter_matching_nothing_returns_nothing(searcher: HybridSearcher) -> None:
    vector = np.array(bag_of_words_vector("zebra"), dtype=np.float32)
    for filters in (Filters(tags=("nope",)), Filters(sources=("elsewhere/**",)), Filters(file_types=("pdf",))):
        result = searcher.search(["zebra vacation"], filters, extra_vectors=[vector], access=Access.unrestricted())
        assert result.chunks == []
        assert all(step.dense == [] and step.bm25 == [] for step in result.trace.per_query)


def test_pipeline_applies_filters_to_passages(index: Index, built) -> None:
    _, server = built
    pipeline = RagPipeline(index, _config(server.base_url))
    retrieved = pipeline.retrieve("zebra stripes vacation", filters=Filters(sources=("corpus/hr",)))
    assert retrieved.passages
    assert {p.source for p in retrieved.passages} <= {"corpus/hr/benefits.md", "corpus/hr/sub/dental.txt"}
    assert retrieved.trace.filters == {"sources": ["corpus/hr"]}
    answer = pipeline.ask("zebra stripes", filters=Filters(sources=("elsewhere/**",)))
    assert answer.answered is False and answer.passages == [] and answer.citations == []


# --- filters that cannot match are said plainly --------------------------------------------


@pytest.mark.parametrize(
    ("filters", "says", "lists"),
    [
        (Filters(tags=("hrr",)), "unknown tag 'hrr': no source in this index has it", "tags: eng, finance, health, hr (did you mean 'hr'?)"),
        (Filters(file_types=("spreadsheet",)), "unknown file type 'spreadsheet'", "file types: pdf, docx, html, markdown, text, jsonl, external"),
        (Filters(file_types=("md",)), "unknown file type 'md'", "(did you mean 'markdown'?)"),
    ],
    ids=["misspelt-tag", "unknown-type", "extension-as-type"],
)
def test_unknown_filter_values_are_usage_errors_that_list_the_valid_ones(index: Index, built, filters: Filters, says: str, lists: str) -> None:
    from rag.errors import UsageError

    _, server = built
    pipeline = RagPipeline(index, _config(server.base_url))
    with pytest.raises(UsageError) as raised:
        pipeline.ask("zebra stripes", filters=filters)
    assert raised.value.message == says and lists in raised.value.hint


def test_valid_filters_that_keep_no_source_say_so_instead_of_searching(index: Index, built) -> None:
    _, server = built
    server.requests.clear()
    pipeline = RagPipeline(index, _config(server.base_url))
    answer = pipeline.ask("vacation days", filters=Filters(file_types=("markdown",), sources=("corpus/eng/**",)))
    assert answer.answered is False and answer.passages == [] and answer.citations == []
    assert answer.answer == ("No indexed document matches the filters (source: corpus/eng/**; file type: markdown), "
                             "so nothing was searched. Loosen or remove a filter.")
    assert server.embedded_texts() == []  # not even the question was embedded
    control = pipeline.ask("vacation days", filters=Filters(file_types=("markdown",)))
    assert control.passages and "No indexed document" not in control.answer
