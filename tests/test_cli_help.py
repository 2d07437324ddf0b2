"""What a user reads: `--help` that names values the way a person would, and no library debug lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import run_rag

COMMANDS = ["", "ingest", "remove", "sources", "ask", "chat", "config", "eval", "eval retrieval", "eval answers",
            "eval report", "eval compare", "eval meta", "serve", "ui", "keys", "keys create", "keys list", "keys revoke"]
# Python type names as value placeholders (typer 0.29 writes `<bool>` even beside flags and `<list[str]>` beside repeatable options)
TYPE_PLACEHOLDER = re.compile(r"<(?:bool|list\[[^\]]*\]|NoneType|Optional\[[^\]]*\])>")
FLAG_WITH_VALUE = re.compile(r"--(?:json|help|debug|explain|public|admin)\s+<\w+>")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_type_placeholders(command: str, tmp_path: Path) -> None:
    done = run_rag(*command.split(), "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--help" in done.stdout
    assert not TYPE_PLACEHOLDER.findall(done.stdout), TYPE_PLACEHOLDER.findall(done.stdout)
    assert not FLAG_WITH_VALUE.findall(done.stdout), FLAG_WITH_VALUE.findall(done.stdout)  # a flag takes no value

SEARCH_AFTER_LOGGING = """
import logging, sys
{setup}
from rag.config import load_config
from rag.index.bm25 import BM25Index
index = BM25Index(load_config().bm25)
index.build(["a", "b"], ["vacation days for new employees", "laptop security"])
print(index.search("vacation", 2))
"""


@pytest.mark.parametrize("setup", [
    "logging.basicConfig(level=logging.INFO)",  # like `rag serve`, or an application that logs at INFO
    "logging.warning('a library warned through the root logger')",  # which installs a root handler on the fly
])
def test_bm25_prints_no_debug_lines_whatever_the_application_logs(setup: str) -> None:
    done = subprocess.run([sys.executable, "-c", SEARCH_AFTER_LOGGING.format(setup=setup)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "('a'," in done.stdout
    assert "bm25s" not in done.stderr and "DEBUG" not in done.stderr, done.stderr
