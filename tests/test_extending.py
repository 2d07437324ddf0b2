"""docs/extending.md runs as written: its plug-in module, its configuration and its contract tests.

The page's titled code blocks (my_plugins.py, rag.yaml, test_my_plugins.py) are written to a folder; the plug-ins
are then used by a real ingest and a real question, and the page's test module is run with pytest as a user would.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import load_config
from rag.core.registry import RERANKERS
from rag.errors import RagError
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.pipeline import RagPipeline
from rag.retrieve.filters import Filters
from rag.retrieve.rerank import build_reranker
from tests.conftest import DATA, REPO

PAGE = REPO / "docs" / "extending.md"
HASHED = "embedding.provider=rag.testing.fakes:HashEmbedder"  # vectors without a model: this test is about plug-ins
EMAIL = (
    b"From: Facilities <facilities@example.com>\nSubject: Parking garage closure\nContent-Type: text/plain; charset=utf-8\n\n"
    b"The parking garage is closed for repairs from June 3.\n\nUnused parking permits carry over until the end of March.\n"
)


def titled_blocks() -> dict[str, str]:
    return {title: body for _, title, body in re.findall(r'```(\w+) title="([^"]+)"\n(.*?)\n```', PAGE.read_text(), re.DOTALL)}


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's files in a folder on sys.path (as a user's own package would be)."""
    folder = tmp_path / "user"
    folder.mkdir()
    for title, body in titled_blocks().items():
        (folder / title).write_text(body + "\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "my_plugins", raising=False)
    return folder


def test_the_page_has_the_plugins_the_configuration_and_the_tests() -> None:
    assert set(titled_blocks()) == {"my_plugins.py", "rag.yaml", "test_my_plugins.py"}


def test_the_custom_loader_and_reranker_work_in_a_real_ingest_and_question(plugins: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("travel_policy.pdf", "meeting_notes_2024-06-03_product_sync.txt", "handbook.pdf"):
        (corpus / name).write_bytes((DATA / name).read_bytes())
    (corpus / "garage.eml").write_bytes(EMAIL)
    # the page's reranker lifts every policy and handbook chunk by 0.5 above the e-mail: room for all of them in the context
    config = load_config(plugins / "rag.yaml", [HASHED, "context.max_passages=10"])
    with Index.open(tmp_path / "index", config, writable=True) as index:
        report = Ingestor(index).ingest([str(corpus)])
        records = {Path(r.path).name: r for r in index.manifest.sources()}
    assert report.new == 4 and not report.failed and not report.skipped
    assert records["garage.eml"].file_type == "email"

    with RagPipeline.open(tmp_path / "index", config) as pipeline:
        retrieved = pipeline.retrieve("When do unused parking permits expire?")
        assert retrieved.trace.rerank.kind == "my_plugins:PreferSources"
        assert any(s.source_display.endswith("garage.eml") for s in retrieved.ranked)  # the e-mail's text is searchable
        assert any("carry over until the end of March" in p.text for p in retrieved.passages)
        for scored in retrieved.ranked:  # the plug-in's rule, applied to every candidate it saw
            preferred = "policy" in scored.source_display or "handbook" in scored.source_display
            assert scored.scores["rerank"] == pytest.approx(scored.scores["fused"] + (0.5 if preferred else 0.0))
        assert [s.score for s in retrieved.ranked] == sorted((s.score for s in retrieved.ranked), reverse=True)
        only_email = pipeline.retrieve("When do unused parking permits expire?", filters=Filters(file_types=("email",)))
        assert {s.source_display.rsplit("/", 1)[-1] for s in only_email.ranked} == {"garage.eml"}  # a plug-in's type filters too


def test_a_class_registered_in_code_is_chosen_by_its_name(plugins: Path) -> None:
    PreferSources = importlib.import_module("my_plugins").PreferSources  # written by the fixture
    RERANKERS.register("prefer-sources", PreferSources)
    try:
        config = load_config(None, ["rerank.kind=prefer-sources", 'rerank.options={"prefer": ["data/*"]}'])
        assert isinstance(build_reranker(config.rerank, None), PreferSources)
    finally:
        RERANKERS.unregister("prefer-sources")
    with pytest.raises(RagError) as unknown:
        load_config(None, ["rerank.kind=prefer-sources"])
    assert "unknown reranker 'prefer-sources'" in unknown.value.message and "rag.rerankers" in unknown.value.message


def test_the_pages_contract_tests_pass_when_run_by_pytest(plugins: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_plugins.py"],
        cwd=plugins, capture_output=True, text=True, timeout=300,
        env={**_environment(), "PYTHONPATH": str(plugins)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b(\d+) passed", done.stdout) and "failed" not in done.stdout


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
