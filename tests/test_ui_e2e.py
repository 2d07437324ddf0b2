"""End to end: `rag ui` serves the app on 127.0.0.1, a real headless Chromium asks a question, clicks a citation
marker in the answer and must see exactly the cited span highlighted in the source; screenshots go to test-artifacts/.
Every request the pages make is recorded: one that leaves this machine fails the test (the offline promise).

Chromium comes from Debian (`apt-get install chromium`, which .ci/run does); Playwright drives it (its own browser
download is not used).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from rag.index.manifest import Manifest
from rag.index.store import MANIFEST_FILE
from tests.conftest import REPO
from tests.fake_openai import FakeOpenAI
from tests.helpers import free_port, stop_process_group

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
QUESTION = "How many vacation days do new employees get?"



@pytest.fixture
def start_ui(demo_workdir: Path):
    """`rag ui` on the demo index (extra arguments, e.g. --set, passed on), in its own process group so the Streamlit
    child is stopped with it; returns the URL once /_stcore/health answers."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> str:
        port = free_port()
        log = demo_workdir / f"ui-{port}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "rag", "ui", "--index", ".rag/demo", "--port", str(port), *extra],
                cwd=demo_workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
            assert process.poll() is None, f"rag ui exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"rag ui did not start:\n{log.read_text()}"
            time.sleep(0.5)

    yield start
    for process in processes:
        stop_process_group(process)


@pytest.fixture
def ui_url(start_ui) -> str:
    return start_ui()


@pytest.fixture
def browser():
    """Headless Chromium (Debian's) driven by Playwright; skips with the reason when either is missing."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (.ci/run does)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the `test` extra)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


def local_only(page: "object", base: str) -> list[str]:
    """Record every request the page makes; the returned list fills as it browses (non-local ones only)."""
    external: list[str] = []

    def record(request: "object") -> None:
        url = request.url  # type: ignore[attr-defined]
        if not url.startswith((base + "/", "data:", "blob:", "about:")) and url != base:
            external.append(url)

    page.on("request", record)  # type: ignore[attr-defined]
    return external


def expected_citation(workdir: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "rag", "ask", QUESTION, "--index", ".rag/demo", "--json"],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["citations"][0]


def document_text(index: Path, display_path: str) -> str:
    manifest = Manifest(index / MANIFEST_FILE)
    try:
        record = next(r for r in manifest.sources() if r.display_path == display_path)
        return manifest.document(record.path, display_path).text
    finally:
        manifest.close()


def test_chromium_clicks_a_citation_and_sees_the_cited_span_highlighted(ui_url: str, demo_workdir: Path, browser) -> None:
    citation = expected_citation(demo_workdir)
    cited = document_text(demo_workdir / ".rag/demo", citation["source"])[citation["start"] : citation["end"]]
    assert cited == citation["text"]
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    external = local_only(page, ui_url)
    page.goto(ui_url)
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for(timeout=120_000)
    box.fill(QUESTION)
    box.press("Enter")
    link = page.locator(f'a.rag-cite[data-marker="{citation["marker"]}"]').first  # inside the answer's shadow root
    link.wait_for(timeout=180_000)
    assert link.get_attribute("title") == f"{citation['source']}, page {citation['page']}"
    page.screenshot(path=str(ARTIFACTS / "ui-answer.png"))
    link.click()
    mark = page.locator("mark.rag-cited")
    mark.wait_for(timeout=60_000)
    assert mark.text_content() == cited
    header = page.locator(".rag-source-head").inner_text()
    assert f"page {citation['page']} of" in header and citation["source"] in header
    assert f"{citation['start']:,}–{citation['end']:,}" in header
    page.wait_for_function(  # scrolled so the highlight is inside the viewer's visible area
        """() => { const m = document.querySelector('mark.rag-cited'), box = m.closest('.rag-source');
                   const a = m.getBoundingClientRect(), b = box.getBoundingClientRect();
                   return a.top >= b.top && a.bottom <= b.bottom; }""",
        timeout=10_000,
    )
    page.screenshot(path=str(ARTIFACTS / "ui-citation.png"))
    assert external == [], f"the chat page reached outside this machine: {external}"
    assert (ARTIFACTS / "ui-citation.png").stat().st_size > 10_000


def test_no_page_makes_a_request_outside_this_machine(ui_url: str, browser) -> None:
    """The offline promise: fonts, icons, scripts and data all come from `rag ui` itself, on every page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    external = local_only(page, ui_url)
    page.goto(ui_url)
    page.get_by_placeholder("Ask a question about your documents").wait_for(timeout=120_000)
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="Evaluation").click()
    page.get_by_text("Compare two runs").wait_for(timeout=120_000)
    page.wait_for_load_state("networkidle")
    assert external == [], f"requests left this machine: {external}"


def test_a_question_asked_while_another_is_answered_loses_neither(start_ui, browser) -> None:
    """The second question interrupts the run answering the first; both questions and both answers stay on the page.

    The chat model is the fake OpenAI server, holding its first reply until the second question has been sent."""
    first, second = "Which plan is the CHEAPEST-MARKER one?", "Who approves the SECOND-MARKER budget?"
    held, release = threading.Event(), threading.Event()

    def reply(messages: list[dict[str, str]]) -> str:
        prompt = messages[-1]["content"]
        if "CHEAPEST-MARKER" in prompt and not release.is_set():
            held.set()
            release.wait(timeout=120)
        return "Reply to the first question." if "CHEAPEST-MARKER" in prompt else "Reply to the second question."

    with FakeOpenAI(chat_reply=reply) as fake:
        url = start_ui("--set", "llm.provider=openai", "--set", f"llm.base_url={fake.base_url}", "--set", "llm.api_key=test-key",
                       "--set", "llm.model=fake", "--set", "llm.max_retries=0", "--set", "rewrite.condense=false")
        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        box = page.get_by_placeholder("Ask a question about your documents")
        page.goto(url)
        box.wait_for(timeout=120_000)
        box.fill(first)
        box.press("Enter")
        try:
            assert held.wait(timeout=180), "the first question never reached the chat model"
            box.fill(second)  # asked while the first answer is still being written
            box.press("Enter")
            page.wait_for_function("() => !document.querySelector('textarea').value", timeout=30_000)  # sent
            page.wait_for_timeout(500)  # lets the server take the rerun before the first reply comes back
        finally:
            release.set()
        page.get_by_text("Reply to the second question.").wait_for(timeout=180_000)
        page.get_by_text("Reply to the first question.").wait_for(timeout=60_000)
        shown = page.locator('[data-testid="stChatMessage"]').all_inner_texts()  # the answers sit in shadow roots
        answers = [page.get_by_text(f"Reply to the {which} question.").count() for which in ("first", "second")]
        page.screenshot(path=str(ARTIFACTS / "ui-two-questions.png"))
    questions = [text for text in shown if first in text or second in text]
    assert [first in text for text in questions] == [True, False]  # both questions, in the order they were asked
    assert answers == [1, 1]


def test_rag_ui_rejects_bad_settings_before_starting(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rag", "ui", "--index", str(tmp_path / "i"), "--set", "retrieval.top_k=0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "retrieval.top_k" in done.stderr and "Uvicorn" not in done.stderr


def test_the_cli_does_not_import_streamlit() -> None:
    code = "import sys, rag.cli.main; assert 'streamlit' not in sys.modules and 'ui_support' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0
