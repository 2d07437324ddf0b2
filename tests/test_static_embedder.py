"""embedding.provider: static, the opt-in fast profile: the WordLlama static model bundled in the `wordllama` wheel
(docs/embeddings.md). The real model, read from the installed package; the tests skip without the `fast` extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.config import EmbeddingConfig, RagConfig
from rag.errors import RagError
from rag.index.embedders import build_embedder
from rag.index.embedders.static_wordllama import StaticWordLlamaEmbedder
from rag.testing import EmbedderContract

needs_wordllama = pytest.mark.skipif(
    importlib.util.find_spec("wordllama") is None,
    reason="the fast extra is not installed: pip install -e '.[fast]'",
)

STATIC = EmbeddingConfig(provider="static")


@pytest.fixture(scope="module")
def embedder() -> StaticWordLlamaEmbedder:
    return StaticWordLlamaEmbedder(STATIC)


@needs_wordllama
class TestStaticEmbedder(EmbedderContract):
    """The embedder contract, on the real bundled model."""


@needs_wordllama
def test_unit_vectors_of_256_dimensions_even_for_an_empty_text(embedder: StaticWordLlamaEmbedder) -> None:
    vectors = embedder.embed(["Train tickets are reimbursed in second class.", "", "x"])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # "" has no token: no 0/0 row
    assert embedder.embed([]).shape == (0, 256)


@needs_wordllama
def test_a_paraphrase_ranks_above_unrelated_texts(embedder: StaticWordLlamaEmbedder) -> None:
    query, paraphrase, *unrelated = embedder.embed(
        [
            "How do I reset a forgotten password?",
            "Steps to recover your account password when you cannot remember it.",
            "The river flooded the valley after three days of heavy rain.",
            "Quarterly revenue grew by ten percent on strong exports.",
        ]
    )
    assert float(query @ paraphrase) > max(float(query @ other) for other in unrelated) + 0.1


@needs_wordllama
def test_long_texts_are_read_to_the_end(embedder: StaticWordLlamaEmbedder) -> None:
    """Nothing is truncated: two texts differing only after 2,000 tokens get different vectors."""
    head = "The committee reviewed the annual budget and approved it. " * 200
    first, second = embedder.embed([head + "Volcanoes erupt molten lava.", head + "Penguins swim in cold oceans."])
    assert float(first @ second) < 0.99999


@needs_wordllama
def test_the_bundled_files_load_without_network_or_cache(tmp_path: Path) -> None:
    """A fresh process with no network at all (requests refuses every call) and an empty home folder loads the
    model from the wheel, creates no cache folder, and leaves the root logger as it was."""
    code = (
        "import logging, requests\n"
        "def refuse(*a, **k): raise AssertionError('network call')\n"
        "requests.Session.request = refuse\n"
        "from rag.config import EmbeddingConfig\n"
        "from rag.index.embedders.static_wordllama import StaticWordLlamaEmbedder\n"
        "assert StaticWordLlamaEmbedder(EmbeddingConfig(provider='static')).embed(['hello world']).shape == (1, 256)\n"
        "assert logging.getLogger().handlers == [] and logging.getLogger().level == logging.WARNING\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env={"HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / ".cache").exists()


def test_the_config_accepts_static_and_gives_it_its_own_model_id() -> None:
    config = RagConfig.model_validate({"embedding": {"provider": "static"}, "chunking": {"size": 1000}})  # no token window
    assert isinstance(config.embedding, EmbeddingConfig)
    ids = {config.embedding.model_id(), EmbeddingConfig().model_id(), EmbeddingConfig(runtime="openvino").model_id()}
    assert len(ids) == 3 and config.embedding.model_id().startswith("static:")
    assert config.indexing_fingerprint("md") != RagConfig().indexing_fingerprint("md")  # a switch re-embeds files
    assert isinstance(build_embedder(config.embedding), StaticWordLlamaEmbedder)


@needs_wordllama
def test_an_index_built_with_it_answers_and_keeps_using_it(tmp_path: Path) -> None:
    from rag.index.store import Index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text("# Travel\n\nTrain tickets are reimbursed in second class within thirty days.\n")
    (docs / "security.md").write_text("# Security\n\nReport a lost laptop to the security team within one hour.\n")
    index = tmp_path / "index"
    report = rag.add(index, paths=[docs], overrides=["embedding.provider=static"])
    assert report.new == 2 and report.failed == []
    # the caller's config names the default model and dense retrieval only: the index's own model answers
    with rag.open(index, overrides=["retrieval.bm25_top_k=0"]) as pipeline:
        assert pipeline.index.query_embedder.model_id == STATIC.model_id()
        retrieved = pipeline.retrieve("What should I do when my laptop is lost?")
        assert retrieved.ranked[0].chunk.text.find("lost laptop") >= 0
        answer = pipeline.ask("How are train tickets reimbursed?")
    assert answer.citations and answer.citations[0].source.endswith("travel.md")
    with Index.open(index, RagConfig()) as opened:
        assert opened.manifest.get_meta("embedding_model") == STATIC.model_id()


def test_without_the_fast_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wordllama", None)  # what `import wordllama` meets when it is not installed
    with pytest.raises(RagError) as raised:
        StaticWordLlamaEmbedder(STATIC).embed(["x"])
    assert "rag[fast]" in raised.value.hint and "wordllama==0.4.0.post1" in raised.value.hint
