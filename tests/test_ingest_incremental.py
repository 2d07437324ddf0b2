"""Incremental ingestion: unchanged files cost nothing, changes replace chunks, deletions propagate."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from tests.helpers import assert_index_consistent

DOCS = {
    "vacation.md": "# Vacation\n\nNew employees get 20 vacation days per year.\n\n## Carry-over\n\nUp to 5 days carry over.\n",
    "expenses.txt": "Meals on domestic travel are reimbursed up to 75 dollars per day.\n\nReceipts are required above 25 dollars.\n",
    "notes/standup.md": "# Stand-up\n\nThe release train leaves every second Tuesday.\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for name, text in DOCS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_ingest(index_dir: Path, paths: list[str], *overrides: str):
    with Index.open(index_dir, load_config(None, list(overrides)), writable=True) as index:
        report = Ingestor(index).ingest(paths)
        ids = assert_index_consistent(index)
    return report, ids


def test_second_ingest_of_unchanged_corpus_embeds_nothing(corpus: Path, tmp_path: Path) -> None:
    first, ids = run_ingest(tmp_path / "index", [str(corpus)])
    assert (first.new, first.changed, first.unchanged) == (3, 0, 0)
    assert first.texts_embedded == len(ids) > 0
    second, ids_again = run_ingest(tmp_path / "index", [str(corpus)])
    assert (second.new, second.changed, second.unchanged, second.removed) == (0, 0, 3, 0)
    assert second.texts_embedded == 0 and second.chunks_added == 0 and second.chunks_removed == 0
    assert ids_again == ids


def test_touched_but_identical_file_is_unchanged(corpus: Path, tmp_path: Path) -> None:
    run_ingest(tmp_path / "index", [str(corpus)])
    later = time.time() + 100
    os.utime(corpus / "vacation.md", (later, later))
    report, _ = run_ingest(tmp_path / "index", [str(corpus)])
    assert report.unchanged == 3 and report.texts_embedded == 0


def test_changed_file_replaces_its_chunks_only(corpus: Path, tmp_path: Path) -> None:
    _, before = run_ingest(tmp_path / "index", [str(corpus)])
    (corpus / "vacation.md").write_text("# Vacation\n\nNew employees get 22 vacation days per year.\n")
    report, after = run_ingest(tmp_path / "index", [str(corpus)])
    assert (report.new, report.changed, report.unchanged) == (0, 1, 2)
    assert report.chunks_removed >= 1 and report.chunks_added >= 1
    with Index.open(tmp_path / "index", load_config()) as index:
        texts = [c.text for c in index.manifest.chunks_by_id(sorted(after))]
    assert any("22 vacation days" in t for t in texts)
    assert not any("20 vacation days" in t for t in texts)
    assert len(before - after) == report.chunks_removed


def test_file_deleted_from_ingested_folder_is_removed_everywhere(corpus: Path, tmp_path: Path) -> None:
    run_ingest(tmp_path / "index", [str(corpus)])
    (corpus / "notes" / "standup.md").unlink()
    report, ids = run_ingest(tmp_path / "index", [str(corpus)])
    assert report.removed == 1 and report.chunks_removed >= 1
    with Index.open(tmp_path / "index", load_config()) as index:
        assert [r.display_path for r in index.manifest.sources()] == [f"{corpus}/expenses.txt", f"{corpus}/vacation.md"]
        assert not any("release train" in c.text for c in index.manifest.chunks_by_id(sorted(ids)))
        assert index.bm25().search("release train Tuesday", 5) == []


def test_file_deleted_under_two_given_folders_is_removed_once(corpus: Path, tmp_path: Path) -> None:
    run_ingest(tmp_path / "index", [str(corpus)])
    (corpus / "notes" / "standup.md").unlink()
    report, _ = run_ingest(tmp_path / "index", [str(corpus), str(corpus / "notes")])
    assert (report.removed, report.unchanged, report.failed) == (1, 2, [])


def test_vector_store_is_opened_only_by_runs_that_write_vectors(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unchanged re-ingest never loads the vector store (embedded Chroma's imports are half a second)."""
    run_ingest(tmp_path / "index", [str(corpus)])
    opened: list[str] = []
    begin_write = Index.begin_write
    monkeypatch.setattr(Index, "begin_write", lambda self: opened.append(self.location) or begin_write(self))
    unchanged, _ = run_ingest(tmp_path / "index", [str(corpus)])
    assert unchanged.unchanged == 3 and opened == []
    (corpus / "expenses.txt").write_text("Meals on domestic travel are reimbursed up to 80 dollars per day.\n")
    changed, _ = run_ingest(tmp_path / "index", [str(corpus)])
    assert changed.changed == 1 and changed.chunks_added >= 1 and len(opened) == 1
    with Index.open(tmp_path / "index", load_config()) as index:
        assert index.bm25().search("80 dollars", 1) and not index.bm25().search("75", 5)


def test_remove_command_path(corpus: Path, tmp_path: Path) -> None:
    run_ingest(tmp_path / "index", [str(corpus)])
    with Index.open(tmp_path / "index", load_config(), writable=True) as index:
        report = Ingestor(index).remove([str(corpus / "expenses.txt"), str(corpus / "nope.md")])
        assert report.removed == 1
        assert [p.path for p in report.failed] == [str(corpus / "nope.md")]
        assert_index_consistent(index)
        assert len(index.manifest.sources()) == 2


def test_chunking_change_reindexes_and_reuses_cached_embeddings(corpus: Path, tmp_path: Path) -> None:
    _, before = run_ingest(tmp_path / "index", [str(corpus)])
    report, after = run_ingest(tmp_path / "index", [str(corpus)], "chunking.size=20", "chunking.overlap=4")
    assert report.changed == 3 and report.unchanged == 0
    assert before.isdisjoint(after)  # ids carry the config fingerprint
    assert report.texts_embedded < len(after)  # chunks whose text did not change come from the cache


def test_embedding_change_rebuilds_vectors(corpus: Path, tmp_path: Path) -> None:
    _, before = run_ingest(tmp_path / "index", [str(corpus)], "chunking.size=100")
    report, after = run_ingest(tmp_path / "index", [str(corpus)], "chunking.size=100", "embedding.max_tokens=200")
    assert report.changed == 3
    assert report.texts_embedded == len(after)
    assert before.isdisjoint(after)


def test_bm25_finds_ingested_text(corpus: Path, tmp_path: Path) -> None:
    run_ingest(tmp_path / "index", [str(corpus)])
    with Index.open(tmp_path / "index", load_config()) as index:
        hits = index.bm25().search("how many vacation days do new employees get", 3)
        top = index.manifest.chunks_by_id([hits[0][0]])[0]
        assert "20 vacation days" in top.text
        vector_hits = index.vectors.query(index.embedder.embed(["reimbursement for meals when travelling"])[0], 1)
        assert "75 dollars" in index.manifest.chunks_by_id([vector_hits[0][0]])[0].text


def test_second_writer_is_refused_clearly(corpus: Path, tmp_path: Path) -> None:
    from rag.errors import RagError

    with Index.open(tmp_path / "index", load_config(), writable=True):
        with pytest.raises(RagError) as caught:
            Index.open(tmp_path / "index", load_config(), writable=True)
    assert "another process is writing" in caught.value.message


def test_tags_are_recorded_and_updated_without_reembedding(corpus: Path, tmp_path: Path) -> None:
    config = load_config()
    with Index.open(tmp_path / "index", config, writable=True) as index:
        Ingestor(index, tags=["policies"]).ingest([str(corpus)])
    with Index.open(tmp_path / "index", config, writable=True) as index:
        untagged_run = Ingestor(index).ingest([str(corpus)])  # no tags given: existing tags kept
        assert {tuple(r.tag_list) for r in index.manifest.sources()} == {("policies",)}
        retagged = Ingestor(index, tags=["hr", "2024"]).ingest([str(corpus / "vacation.md")])
        tags = {r.display_path.rsplit("/", 1)[-1]: r.tag_list for r in index.manifest.sources()}
    assert untagged_run.texts_embedded == 0 and retagged.texts_embedded == 0
    assert tags == {"vacation.md": ["2024", "hr"], "expenses.txt": ["policies"], "standup.md": ["policies"]}
