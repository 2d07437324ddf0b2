"""The chat UI as a client of `rag serve` (`rag ui --api URL`), end to end: a real server on a copy of the sample
index whose data/hr/ only group `hr` may read, the real UI, Debian's Chromium.

A staff key must never see the HR documents anywhere: every websocket frame the browser receives from the UI
(answers, the sources table, the trace, source views) is recorded and searched for text only they hold. The hr key
is the control: the same question shows them, and its citation opens the HR document. A wrong key is refused
with a clear message, and no request leaves this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rag.index.backends import open_backend
from tests.conftest import REPO
from tests.held_chat import HOLD_ENV, clear, released
from tests.helpers import free_port, stop_process_group
from tests.test_ui_e2e import ARTIFACTS, browser, local_only  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.slow

INDEX = ".rag/demo"
QUESTION = "What is the salary band for a Senior Software Engineer E3 in Portland?"
HR_ONLY = ["$166,000", "$187,000", "salary_bands", "data/hr"]  # text only data/hr/ holds


def spawn(command: list[str], cwd: Path, health: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own process group; return once `health` answers 200."""
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"{command[3:5]} exited with {process.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{command[3:5]} did not start:\n{log.read_text()}"
        time.sleep(0.3)


def serve(workdir: Path, log: str, *settings: str, env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """`rag serve` on `workdir`'s index with `--set` settings: its URL and process (stop it with stop_process_group)."""
    port = free_port()
    command = [sys.executable, "-m", "rag", "serve", "--index", INDEX, "--port", str(port)]
    for setting in settings:
        command += ["--set", setting]
    api = f"http://127.0.0.1:{port}"
    return api, spawn(command, workdir, f"{api}/healthz", workdir / log, env)


@contextmanager
def ui_for(api: str, workdir: Path, log: str) -> Iterator[str]:
    """`rag ui --api` in front of the server at `api`; the UI's URL."""
    port = free_port()
    ui = spawn([sys.executable, "-m", "rag", "ui", "--api", api, "--port", str(port)], workdir,
               f"http://127.0.0.1:{port}/_stcore/health", workdir / log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(ui)


HELD = ("llm.provider=tests.held_chat:HeldChat", "rewrite.condense=false")  # the answerer that waits for the test's word


def held_env(hold: Path) -> dict[str, str]:
    """The environment of a server whose chat model is tests/held_chat.py, waiting on the file `hold`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), HOLD_ENV: str(hold)}


@pytest.fixture(scope="module")
def ui_keys(hr_workdir: Path) -> dict[str, str]:
    store = open_backend(hr_workdir / INDEX).key_store()
    return {name: store.create(f"browser-{name}", groups)[1] for name, groups in (("staff", ("staff",)), ("hr", ("hr",)))}


@pytest.fixture(scope="module")
def api_ui(hr_workdir: Path, ui_keys: dict[str, str]) -> Iterator[str]:
    """`rag serve` on the restricted index and `rag ui --api` in front of it; the UI's URL."""
    api, server = serve(hr_workdir, "serve-ui.log")
    try:
        with ui_for(api, hr_workdir, "ui-api.log") as url:
            yield url
    finally:
        stop_process_group(server)
    for key in ui_keys.values():  # the key is sent in headers only: never in a URL or a log line
        assert key not in (hr_workdir / "serve-ui.log").read_text() and key not in (hr_workdir / "ui-api.log").read_text()


def signed_in_page(browser, url: str, key: str):  # noqa: ANN001, ANN201, F811
    """A fresh browser session signed in with `key`; with the frames it receives and the requests leaving the machine."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    frames: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(data if isinstance(data, bytes) else data.encode())))
    external = local_only(page, url)
    page.goto(url)
    field = page.locator('input[type="password"]')
    field.wait_for(timeout=120_000)
    field.fill(key)
    page.get_by_role("button", name="Sign in").click()
    return page, frames, external


def ask(page, question: str) -> None:  # noqa: ANN001
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for(timeout=120_000)
    box.fill(question)
    box.press("Enter")
    page.get_by_text("Sources:").first.wait_for(timeout=180_000)
    page.get_by_text("Sources:").first.click()  # the sources table is drawn (and sent) once opened
    page.wait_for_timeout(500)


def test_a_wrong_key_is_refused_with_a_clear_message(api_ui: str, browser) -> None:  # noqa: F811
    page, _, external = signed_in_page(browser, api_ui, "rag_000000000000_not-a-key")
    page.get_by_text("This API key was refused: unknown or revoked API key").wait_for(timeout=60_000)
    assert page.get_by_placeholder("Ask a question about your documents").count() == 0
    assert external == [] and "not-a-key" not in page.url


def test_a_staff_key_never_sees_the_hr_documents_and_an_hr_key_does(api_ui: str, ui_keys: dict[str, str], browser) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    staff, staff_frames, staff_external = signed_in_page(browser, api_ui, ui_keys["staff"])
    ask(staff, QUESTION)
    staff.get_by_text("Uploading needs an admin key").wait_for(timeout=30_000)  # upload disabled, with the reason
    staff.get_by_role("button", name="Open passage [1]").click()  # the source view, through the server
    staff.locator("mark.rag-cited").wait_for(timeout=60_000)
    staff.screenshot(path=str(ARTIFACTS / "ui-api-staff.png"))
    received = b"".join(staff_frames)
    assert b"browser-staff" in received  # the recording works: the signed-in name reached the page
    assert [m for m in HR_ONLY if m.encode() in received] == []
    assert staff_external == []

    hr, hr_frames, hr_external = signed_in_page(browser, api_ui, ui_keys["hr"])
    ask(hr, QUESTION)
    hr.get_by_role("button", name="salary_bands.md").first.click()  # a citation of the HR document
    head = hr.locator(".rag-source-head")
    head.wait_for(timeout=60_000)
    assert "data/hr/salary_bands.md" in head.inner_text()
    hr.screenshot(path=str(ARTIFACTS / "ui-api-hr.png"))
    assert {"$166,000", "data/hr"} <= {m for m in HR_ONLY if m.encode() in b"".join(hr_frames)}
    assert hr_external == []


# --- streaming ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def held_ui(demo_workdir: Path) -> Iterator[tuple[str, str, Path]]:
    """`rag serve` whose chat model (tests/held_chat.py) holds each answer after its first sentence until the test
    writes its word into the hold file, and `rag ui --api` in front of it: (UI URL, API key, hold file)."""
    hold = demo_workdir / "ui-stream.hold"
    key = open_backend(demo_workdir / INDEX).key_store().create("browser-stream", ())[1]
    api, server = serve(demo_workdir, "serve-ui-stream.log", *HELD, env=held_env(hold))
    try:
        with ui_for(api, demo_workdir, "ui-api-stream.log") as url:
            yield url, key, hold
    finally:
        hold.write_text("go")  # lets a held answer end, so the server stops at once
        stop_process_group(server)


def test_answers_stream_in_and_a_failure_mid_answer_keeps_the_text_and_the_chat(held_ui: tuple[str, str, Path], browser) -> None:  # noqa: F811
    """The first sentence is on the page while the server still holds the rest (no sources yet); a failure after it
    keeps that sentence above a clear error; the next question streams and shows its citations and sources."""
    url, key, hold = held_ui
    page, _, external = signed_in_page(browser, url, key)
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for(timeout=120_000)
    messages = page.locator('[data-testid="stChatMessage"]')

    def ask_held(question: str) -> str:
        """Ask; return the answer's first sentence once it is on the page, while the server holds the rest."""
        clear(hold)
        box.fill(question)
        box.press("Enter")
        streaming = messages.filter(has_text="[1]").last
        streaming.wait_for(timeout=180_000)
        assert not released(hold).exists() and page.get_by_text("Sources:").count() == 0  # shown before the answer is complete
        return streaming.inner_text().strip().splitlines()[-1].replace("[1]", "").strip()  # after the avatar's icon name

    first = ask_held("How many vacation days do new employees get?")
    hold.write_text("fail")
    page.get_by_text("the server stopped answering: the held chat model was told to fail").wait_for(timeout=60_000)
    assert page.get_by_text("ask again").count() >= 1
    assert page.get_by_text(first, exact=False).count() >= 1  # what arrived is kept above the error
    page.screenshot(path=str(ARTIFACTS / "ui-api-stream-error.png"))

    second = ask_held("What is the on-call policy for weekends?")
    hold.write_text("go")
    page.get_by_text("Sources:").first.wait_for(timeout=180_000)
    assert page.get_by_text(second, exact=False).count() >= 1
    page.get_by_role("button", name="[1]").first.click()  # a citation button: the cited span opens through the server
    page.locator("mark.rag-cited").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "ui-api-stream.png"))
    assert page.get_by_text("the server stopped answering").count() == 1 and external == []
