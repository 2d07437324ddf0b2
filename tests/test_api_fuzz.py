"""The HTTP API fuzzed against its own OpenAPI document with Schemathesis (issue 21), on a private copy of the
sample index, with a staff key and an admin key, every operation, a bounded number of examples.

Schemathesis's checks ("all") require: no 5xx; every status code, content type and header the server sends is
documented; schema-valid requests are accepted and invalid ones rejected; 405s carry `Allow`; a missing key is a
401. Afterwards the index must be whole: every sample source still indexed, manifest, vector store and BM25 in
agreement, `rag sources` listing what /v1/sources lists, and a plain question answered with a citation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag.config import load_config
from rag.index.store import Index
from tests.conftest import REPO
from tests.helpers import Server, assert_index_consistent, run_rag, seed_from_demo

pytestmark = pytest.mark.slow
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (the test extra) is not installed")

INDEX = ".rag/demo"
MAX_EXAMPLES = 12  # per operation and key: the whole run stays near a minute on 2 shared cores


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, demo_workdir: Path) -> tuple[Path, Server, dict[str, str], list[str]]:
    """A server over a fresh index of the sample corpus, its keys, the sources it held, after both fuzz runs."""
    root = tmp_path_factory.mktemp("fuzz")
    seed_from_demo(demo_workdir, root, INDEX)
    assert run_rag("ingest", "data/", "--index", INDEX, cwd=root).returncode == 0
    keys = {}
    for name, extra in (("staff", ["--groups", "staff"]), ("admin", ["--admin"])):
        made = run_rag("keys", "create", "--index", INDEX, "--name", name, *extra, "--json", cwd=root)
        keys[name] = json.loads(made.stdout)["key"]
    before = sorted(r["path"] for r in json.loads(run_rag("sources", "--index", INDEX, "--json", cwd=root).stdout))
    server = Server(root, INDEX).start()
    try:
        for name in ("staff", "admin"):
            _fuzz(server, keys[name], root / f"report-{name}.xml")
        yield root, server, keys, before
    finally:
        server.stop()


def _fuzz(server: Server, key: str, report: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
        "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "21", "--workers", "1",
        "--header", f"Authorization: Bearer {key}", "--report", "junit", "--report-junit-path", str(report),
        "--suppress-health-check", "all", "--output-truncate", "false",
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.fuzz_hooks", PYTHONPATH=str(REPO))
    done = subprocess.run(command, cwd=server.root, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:] + "\nserver log:\n" + server.log.read_text()[-3000:]


def test_the_fuzzed_api_breaks_no_rule_of_its_schema(fuzzed: tuple[Path, Server, dict[str, str], list[str]]) -> None:
    root = fuzzed[0]
    for name in ("staff", "admin"):
        assert "<testcase" in (root / f"report-{name}.xml").read_text()  # the run tested operations


def test_after_the_fuzz_the_index_is_whole_and_answers(fuzzed: tuple[Path, Server, dict[str, str], list[str]]) -> None:
    root, server, keys, before = fuzzed
    listed = json.loads(run_rag("sources", "--index", INDEX, "--json", cwd=root).stdout)
    served = httpx.get(f"{server.url}/v1/sources", headers={"Authorization": f"Bearer {keys['admin']}"}, timeout=60).json()
    assert sorted(r["path"] for r in listed) == sorted(r["display_path"] for r in served)
    assert set(before) <= {r["path"] for r in listed}  # the fuzzer removed none of the sample sources
    with Index.open(root / INDEX, load_config(None, [])) as index:
        assert_index_consistent(index)
    for name in ("staff", "admin"):
        answer = httpx.post(f"{server.url}/v1/ask", json={"question": "How many vacation days do new employees get?"},
                            headers={"Authorization": f"Bearer {keys[name]}"}, timeout=120).json()
        assert answer["answered"] is True and answer["citations"], answer
