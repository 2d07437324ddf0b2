"""`rag ingest --ray`: loading, chunking and embedding on a real local Ray cluster (a head plus a worker node on
loopback, one CPU each), committed by the driver: the same index as a plain ingest, the same incremental rules,
failures listed, on the folder and the Postgres index."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.config import load_config
from rag.index.store import Index
from rag.ingest.pipeline import Ingestor
from rag.pipeline import RagPipeline
from tests.helpers import assert_index_consistent, free_port, run_rag

ray = pytest.importorskip("ray", reason='the ray extra is not installed (pip install -e ".[ray]")')

QUESTIONS = ["How many vacation days do new employees get?", "What must I do if my laptop is lost?"]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A two-node Ray cluster on 127.0.0.1 (head + worker node, 1 CPU each): its address."""
    from rag.testing.ray_cluster import local_ray_cluster

    with local_ray_cluster(nodes=2, cpus_per_node=1) as address:
        yield address


@pytest.fixture
def corpus(sample_corpus: Path) -> Path:
    """The sample corpus (PDF, DOCX, HTML, Markdown, text, JSONL) plus one broken PDF that must be listed."""
    (sample_corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    return sample_corpus


def _snapshot(index: Index) -> dict[str, object]:
    """What a reader sees: sources, chunks with spans, vectors (by chunk id) and the answers to a few questions."""
    catalog = index.manifest
    ids = sorted(assert_index_consistent(index))
    chunks = [(c.chunk_id, c.source, c.doc_id, c.ordinal, c.start, c.end, c.page, c.text) for c in catalog.chunks_by_id(ids)]
    order, vectors = index.vectors.get_vectors(ids)
    by_id = dict(zip(order, vectors))
    sources = sorted((r.path, r.file_type, r.content_hash, r.chunks, r.pages, r.groups, r.tags) for r in catalog.sources())
    pipeline = RagPipeline(index, index.config)
    answers = []
    for question in QUESTIONS:
        answer = pipeline.ask(question)
        answers.append((answer.answer, [(c.source, c.start, c.end) for c in answer.citations] if answer.citations else []))
    return {"sources": sources, "chunks": sorted(chunks), "vectors": np.vstack([by_id[i] for i in ids]), "answers": answers}


def _ingest_json(location: str, corpus: Path, *extra: str) -> dict[str, object]:
    done = run_rag("ingest", str(corpus), "--index", location, "--json", *extra, cwd=corpus.parent)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


# The int8 model quantizes each batch's activations together, so a text's vector moves (cosine ~0.98-0.99) with
# the texts batched beside it, in a plain ingest too; fp32 compute is batch-invariant, so the comparison is exact.
FP32 = "embedding.precision=fp32"


def test_ray_ingest_builds_the_same_index_as_a_plain_ingest(ray_cluster: str, corpus: Path, tmp_path: Path) -> None:
    ray_report = _ingest_json(str(tmp_path / "ray-index"), corpus, "--ray", ray_cluster, "--set", FP32)
    with Index.open(tmp_path / "plain-index", load_config(None, [FP32]), writable=True) as index:
        plain_report = Ingestor(index).ingest([str(corpus)])
    assert ray_report["new"] == plain_report.new > 10
    assert ray_report["chunks_added"] == plain_report.chunks_added > 100
    assert ray_report["texts_embedded"] == plain_report.texts_embedded == plain_report.chunks_added
    assert [f["path"] for f in ray_report["failed"]] == [str(corpus / "broken.pdf")]  # listed with its reason
    assert ray_report["failed"][0]["reason"] == plain_report.failed[0].reason
    config = load_config(None, [FP32])
    with Index.open(tmp_path / "ray-index", config) as ray_index, Index.open(tmp_path / "plain-index", config) as plain:
        got, expected = _snapshot(ray_index), _snapshot(plain)
    assert got["sources"] == expected["sources"]
    assert got["chunks"] == expected["chunks"]  # same ids, texts and character spans
    cosine = np.sum(got["vectors"] * expected["vectors"], axis=1)  # unit vectors
    assert cosine.min() > 0.9999
    assert got["answers"] == expected["answers"] and got["answers"][0][0]


@pytest.mark.parametrize("backend", ["folder", "postgres"])
def test_ray_ingest_keeps_the_incremental_rules(backend: str, ray_cluster: str, corpus: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = request.getfixturevalue("postgres_url") if backend == "postgres" else str(tmp_path / "index")
    first = _ingest_json(location, corpus, "--ray", ray_cluster)
    assert first["new"] > 10 and first["failed_count"] == 1

    again = _ingest_json(location, corpus, "--ray", ray_cluster)
    assert (again["new"], again["changed"], again["removed"], again["texts_embedded"], again["chunks_added"]) == (0, 0, 0, 0, 0)
    assert again["unchanged"] == first["new"] and again["failed_count"] == 1  # still broken, still listed

    with Index.open(location, load_config(None, [])) as index:
        before = {r.path: index.manifest.chunk_ids_of(r.path) for r in index.manifest.sources()}
    notes = corpus / "release_notes.md"
    notes.write_text(notes.read_text() + "\n\n## Addendum\n\nThe quarterly review moves to the second Thursday.\n")
    (corpus / "troubleshooting.html").unlink()
    (corpus / "broken.pdf").unlink()
    third = _ingest_json(location, corpus, "--ray", ray_cluster)
    assert (third["new"], third["changed"], third["removed"], third["failed_count"]) == (0, 1, 1, 0)
    with Index.open(location, load_config(None, [])) as index:
        after = {r.path: index.manifest.chunk_ids_of(r.path) for r in index.manifest.sources()}
        assert_index_consistent(index)
    changed = notes.resolve().as_posix()
    assert set(before) - set(after) == {(corpus / "troubleshooting.html").resolve().as_posix()}
    assert {path for path in after if after[path] != before[path]} == {changed}  # only the changed file's chunks moved
    added, removed = after[changed] - before[changed], before[changed] - after[changed]
    assert third["chunks_added"] == len(added) > 0 and third["texts_embedded"] == len(added)  # kept chunks keep vectors
    assert third["chunks_removed"] == len(removed) + len(before[(corpus / "troubleshooting.html").resolve().as_posix()])


def test_an_unreachable_cluster_is_named_and_nothing_is_created(tmp_path: Path, corpus: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    done = run_rag("ingest", str(corpus), "--index", str(tmp_path / "index"), "--ray", address, cwd=tmp_path, timeout=60)
    assert done.returncode == 3  # a runtime problem, nothing done
    assert f"cannot reach the Ray cluster at {address}" in done.stderr and "ray start --head" in done.stderr
    assert not (tmp_path / "index").exists()


def test_without_ray_installed_the_error_says_how_to_install_it(tmp_path: Path, corpus: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"  # what `import ray` meets when the extra is not installed
        "import runpy; sys.argv = ['rag', 'ingest', sys.argv[1], '--index', sys.argv[2], '--ray', 'auto']\n"
        "runpy.run_module('rag', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code, str(corpus), str(tmp_path / "index")], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert "Ray, which is not installed" in done.stderr and 'pip install "rag[ray]"' in done.stderr
    assert not (tmp_path / "index").exists()


def test_rag_help_does_not_import_ray(tmp_path: Path) -> None:
    code = "import sys, rag.cli.main as m; m.app(['--help'], standalone_mode=False); assert 'ray' not in sys.modules, 'ray imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
