"""The chat UI's shared pipelines (ui/shared_pipelines.py): one per index and settings, reused by every question,
catching up with what was ingested meanwhile; the least recently used closed beyond the kept number."""

from __future__ import annotations

from pathlib import Path

import pytest

import rag
from shared_pipelines import SharedPipelines

GARAGE = "The parking garage closes at 9 pm on weekdays. Visitors park on level 2."
BIKES = "Bike lockers are on level 1 of the garage. Lockers are free for employees who cycle to work."


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    rag.add(folder, documents=[rag.Document(doc_id="garage", text=GARAGE)], source="memos")
    return folder


def test_one_pipeline_serves_every_question_and_sees_new_documents(index_dir: Path) -> None:
    shared, config = SharedPipelines(), rag.load_config()
    try:
        with shared.lease(index_dir, config) as first:
            assert "9 pm" in first.ask("When does the parking garage close?").answer
        rag.add(index_dir, documents=[rag.Document(doc_id="garage", text=GARAGE), rag.Document(doc_id="bikes", text=BIKES)], source="memos")
        with shared.lease(index_dir, config) as second:
            answer = second.ask("Where are the bike lockers?")
        assert second is first  # reused, not opened again
        assert answer.answered and any("level 1" in c.text for c in answer.citations)  # and it saw the new document
        with shared.lease(index_dir, rag.load_config(None, ["retrieval.top_k=2"])) as other_settings:
            assert other_settings is not first and other_settings.config.retrieval.top_k == 2
    finally:
        shared.close()


def test_settings_beyond_the_kept_number_close_the_oldest(index_dir: Path) -> None:
    shared = SharedPipelines(keep=1)
    try:
        with shared.lease(index_dir, rag.load_config()) as first:
            pass
        with shared.lease(index_dir, rag.load_config(None, ["retrieval.top_k=3"])):
            pass
        with pytest.raises(Exception):
            first.index.manifest.chunk_count()  # closed when it was evicted
    finally:
        shared.close()
