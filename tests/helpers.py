"""Assertions and builders shared by several test files."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.index.store import Index


EVAL = Path(__file__).resolve().parents[1] / "eval"


def load_eval_script(name: str):
    """A script (or package folder) of eval/ as a module (eval/ is not a package; its scripts import one another by name)."""
    sys.path.insert(0, str(EVAL))
    try:
        folder = EVAL / name
        if folder.is_dir():
            spec = importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        else:
            spec = importlib.util.spec_from_file_location(name, EVAL / f"{name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    finally:
        sys.path.remove(str(EVAL))


def assert_index_consistent(index: Index) -> set[str]:
    """Manifest, vector store and BM25 hold exactly the same chunk ids; returns them."""
    manifest_ids = index.manifest.all_chunk_ids()
    assert index.vectors.ids() == manifest_ids
    assert index.vectors.count() == len(manifest_ids)
    bm25_ids = index.bm25().chunk_ids
    assert len(bm25_ids) == len(set(bm25_ids))
    assert set(bm25_ids) == manifest_ids
    assert not index.manifest.pending()
    for record in index.manifest.sources():
        assert len(index.manifest.chunk_ids_of(record.path)) == record.chunks
    return manifest_ids


def fake_endpoint_config(base_url: str, *extra: str):
    """A config whose embeddings come from the fake OpenAI-compatible server (tests/fake_openai.py)."""
    from rag.config import load_config

    return load_config(
        None,
        [
            "embedding.provider=openai",
            f"embedding.base_url={base_url}",
            "embedding.api_key=test-key",
            "embedding.model=fake-embed",
            "embedding.max_retries=0",
            *extra,
        ],
    )


TINY_DOCS = {
    "d1": ("Vacation policy", "New employees get twenty vacation days per year."),
    "d2": ("Expense policy", "Meals on domestic travel are reimbursed up to seventy five dollars."),
    "d3": ("Security policy", "Report a lost laptop to the security team within one hour."),
    "d4": ("Release notes", "Version four point three adds webhook retries and a new dashboard."),
}
TINY_QUERIES = {"q1": "how many vacation days do new employees get", "q2": "lost laptop report security", "q3": "zebra migration patterns"}
TINY_QRELS = {"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d4": 1}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for servers, or for "unreachable endpoint" tests)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_rag(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real `rag` CLI in a subprocess (this interpreter, so the checkout under test)."""
    return subprocess.run([sys.executable, "-m", "rag", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          input=stdin, check=False)


def write_tiny_beir(folder: Path) -> Path:
    """A four-document BEIR dataset (corpus, queries, qrels/test.tsv) in `folder`."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in TINY_DOCS.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in TINY_QUERIES.items()))
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, rel in TINY_QRELS.items() for d, s in rel.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def tiny_retrieval_run(root: Path) -> Path:
    """A real two-config run of `rag eval retrieval` on a tiny BEIR dataset: bm25 misses q3, hybrid finds it."""
    folder = write_tiny_beir(root / "tiny")
    (root / "bm25.yaml").write_text("retrieval:\n  dense_top_k: 0\n")
    (root / "hybrid.yaml").write_text("retrieval: {}\n")
    done = run_rag("eval", "retrieval", "--dataset", str(folder), "--config", str(root / "bm25.yaml"), "--config", str(root / "hybrid.yaml"),
                   "--cache-dir", str(root / "cache"), "--out", str(root / "runs"), "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["run_dir"])


def seed_from_demo(demo_workdir: Path, root: Path, index: str = ".rag/demo") -> None:
    """Put data/ and the session demo index's embedding cache in `root`: ingesting data/ there embeds nothing.

    For module fixtures that need their own index of the sample corpus (they change it, or ingest it under
    another config): the index itself cannot be copied, its sources are keyed by absolute path.
    """
    import shutil

    from rag.index.store import EMBEDDING_CACHE_FILE

    shutil.copytree(demo_workdir / "data", root / "data")
    (root / index).mkdir(parents=True)
    shutil.copy(demo_workdir / ".rag/demo" / EMBEDDING_CACHE_FILE, root / index / EMBEDDING_CACHE_FILE)


def recorded_answer_run() -> Path:
    """The newest recorded answer run in eval/runs (rows of runs recorded before the shared key are keyed `id`)."""
    runs = sorted((p for p in (Path(__file__).resolve().parents[1] / "eval" / "runs").iterdir() if (p / "run.json").is_file()), reverse=True)
    found = [p for p in runs if json.loads((p / "run.json").read_text())["kind"] == "answers"]
    if not found:
        pytest.skip("no recorded answer run in eval/runs")
    return found[0]


class Server:
    """A `rag serve` process; `start()` waits until /healthz answers."""

    def __init__(self, root: Path, index: str) -> None:
        self.root = root
        self.index = index
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rag", "serve", "--index", self.index, "--port", str(self.port)],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError("server did not start:\n" + self.log.read_text())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a server started in its own session (and its children); SIGKILL after 20 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
