"""Removal is exact and explicit (issue 21): blank paths and accidental whole-index removals are refused before
anything is written, folders need the caller's consent, and a path that names no source is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.errors import UsageError
from rag.index.store import Index
from rag.ingest.external import ingest_documents, remove_documents
from rag.ingest.pipeline import Ingestor
from rag.ingest.removal import NOT_INDEXED, plan_removal
from tests.conftest import DATA
from tests.fake_openai import FakeOpenAI
from tests.helpers import assert_index_consistent, fake_endpoint_config, run_rag, seed_from_demo


@pytest.fixture
def corpus_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An index of data/*.md and data/hr/*.md (embedded by the fake endpoint), opened writable, cwd = tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs/hr").mkdir(parents=True)
    for source in [*DATA.glob("*.md"), *DATA.glob("hr/*.md")]:
        shutil.copy(source, tmp_path / "docs" / source.relative_to(DATA))
    with FakeOpenAI() as server:
        config = fake_endpoint_config(server.base_url)
        with Index.open(tmp_path / "index", config, writable=True) as index:
            assert not Ingestor(index).ingest(["docs"]).failed
            yield index


def _paths(index: Index) -> list[str]:
    return [r.display_path for r in index.manifest.sources()]


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_path_is_a_usage_error_that_removes_nothing(corpus_index: Index, blank: str) -> None:
    before = _paths(corpus_index)
    for folders in (True, False):
        with pytest.raises(UsageError, match="empty or blank"):
            Ingestor(corpus_index).remove(["docs/release_notes.md", blank], folders=folders)
    assert _paths(corpus_index) == before
    assert_index_consistent(corpus_index)


def test_exact_paths_by_display_path_key_or_file_and_unknown_paths_reported(corpus_index: Index) -> None:
    key = corpus_index.manifest.source(str(Path("docs/oncall_policy.md").resolve())).path
    report = Ingestor(corpus_index).remove(["docs/release_notes.md", key, "docs/nothing.md", "bad\x00path"], folders=False)
    assert report.removed == 2 and report.chunks_removed > 0
    assert [(p.path, p.reason) for p in report.failed] == [("docs/nothing.md", NOT_INDEXED), ("bad\x00path", NOT_INDEXED)]
    assert "docs/release_notes.md" not in _paths(corpus_index) and "docs/oncall_policy.md" not in _paths(corpus_index)
    assert_index_consistent(corpus_index)


def test_a_folder_needs_consent_and_then_takes_only_what_is_below_it(corpus_index: Index) -> None:
    refused = Ingestor(corpus_index).remove(["docs/hr"], folders=False)
    assert refused.removed == 0 and "folder holding 2 sources" in refused.failed[0].reason
    assert sum(p.startswith("docs/hr/") for p in _paths(corpus_index)) == 2
    taken = Ingestor(corpus_index).remove(["docs/hr/"], folders=True)
    assert taken.removed == 2 and not taken.failed
    assert _paths(corpus_index) and not any(p.startswith("docs/hr/") for p in _paths(corpus_index))
    assert_index_consistent(corpus_index)


@pytest.mark.parametrize("folder", ["docs", ".", "/"])
def test_folders_that_would_empty_the_index_are_refused_unless_asked(corpus_index: Index, folder: str) -> None:
    before = _paths(corpus_index)
    with pytest.raises(UsageError, match=f"would remove every source of the index \\({len(before)}\\)"):
        Ingestor(corpus_index).remove([folder], folders=True)
    assert _paths(corpus_index) == before
    assert Ingestor(corpus_index).remove([folder], folders=True, everything=True).removed == len(before)
    assert _paths(corpus_index) == []
    assert_index_consistent(corpus_index)


def test_naming_every_source_explicitly_is_allowed(corpus_index: Index) -> None:
    plan = plan_removal(corpus_index.manifest.sources(), _paths(corpus_index), folders=False)
    assert len(plan.sources) == len(_paths(corpus_index)) and not plan.problems and not plan.folders


def test_external_sources_need_their_exact_non_blank_name(corpus_index: Index) -> None:
    Document = pytest.importorskip("langchain_core.documents", reason="the interop extra is not installed").Document

    ingest_documents(corpus_index, [Document(page_content="Webhooks retry five times.")], "langchain:notes")
    for blank in ("", "  "):
        with pytest.raises(ValueError, match="non-empty name"):
            remove_documents(corpus_index, blank)
    assert "langchain:notes" in _paths(corpus_index)
    assert remove_documents(corpus_index, "langchain:notes").removed == 1
    assert_index_consistent(corpus_index)


@pytest.mark.slow
def test_cli_remove_counts_refuses_blank_and_whole_index_and_reports_unknown(tmp_path: Path, demo_workdir: Path) -> None:
    seed_from_demo(demo_workdir, tmp_path)
    assert run_rag("ingest", "data/", "--index", ".rag/demo", cwd=tmp_path).returncode == 0
    total = len(json.loads(run_rag("sources", "--index", ".rag/demo", "--json", cwd=tmp_path).stdout))

    def sources() -> int:
        return len(json.loads(run_rag("sources", "--index", ".rag/demo", "--json", cwd=tmp_path).stdout))

    blank = run_rag("remove", "", "--index", ".rag/demo", cwd=tmp_path)
    assert blank.returncode == 2 and "empty or blank" in blank.stderr and sources() == total
    whole = run_rag("remove", "data", "--index", ".rag/demo", cwd=tmp_path)
    assert whole.returncode == 2 and f"every source of the index ({total})" in whole.stderr and "--all" in whole.stderr
    assert sources() == total
    assert run_rag("remove", "--index", ".rag/demo", cwd=tmp_path).returncode == 2
    folder = run_rag("remove", "data/hr", "data/missing.md", "--index", ".rag/demo", cwd=tmp_path)
    assert folder.returncode == 1 and "Removing 2 source(s); folders: data/hr (2)" in folder.stderr
    assert "data/missing.md" in folder.stdout and sources() == total - 2
    everything = run_rag("remove", "--all", "--index", ".rag/demo", "--json", cwd=tmp_path)
    assert everything.returncode == 0 and json.loads(everything.stdout)["removed"] == total - 2 and sources() == 0


def test_a_failed_bm25_refresh_leaves_readers_working_and_the_next_write_repairs(
    corpus_index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.core.access import Access
    from rag.retrieve.search import HybridSearcher

    config = corpus_index.config
    reader = Index.open(corpus_index.location, config)
    searcher = HybridSearcher(reader, config.retrieval)
    oncall = str(Path("docs/oncall_policy.md").resolve())
    assert searcher.search(["on-call rotation"], access=Access.unrestricted()).chunks[0].chunk.source == oncall

    def fail(*_: object) -> None:
        raise RuntimeError("BM25 build failed")

    with monkeypatch.context() as patched:
        patched.setattr("rag.index.folder.catch_up", fail)  # the BM25 refresh (a removal tokenises nothing)
        with pytest.raises(RuntimeError):
            Ingestor(corpus_index).remove(["docs/oncall_policy.md"])
    assert corpus_index.needs_repair()
    reader.begin_read()  # the reader's next request: the removal is committed, its BM25 generation is not
    for access in (Access.unrestricted(), Access.of_groups(("staff",))):
        found = searcher.search(["on-call rotation"], access=access).chunks
        assert found and oncall not in {s.chunk.source for s in found}
    reader.end_read()
    reader.close()
    assert not Ingestor(corpus_index).ingest(["docs"]).failed  # the next write repairs
    assert not corpus_index.needs_repair() and "docs/oncall_policy.md" in _paths(corpus_index)
    assert_index_consistent(corpus_index)
