"""Every `rag` command on a PostgreSQL index, run through the real CLI (in process, so the models load once), and
`rag index copy` carrying API keys both ways. The index is the session's demo index copied in (nothing embedded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli.main import app
from rag.index.backends import open_backend
from rag.index.copy import copy_index

QUESTION = "How many vacation days do new employees get?"


def rag(*args: str, stdin: str | None = None) -> str:
    """Run `rag ARGS` in this process; returns stdout (stderr apart), asserting exit status 0."""
    result = CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


@pytest.fixture
def demo_in_postgres(postgres_url: str, demo_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The demo index copied into a fresh database; the working directory is the demo's (sources read `data/...`)."""
    copy_index(demo_workdir / ".rag/demo", postgres_url)
    monkeypatch.chdir(demo_workdir)
    monkeypatch.setenv("RAG_INDEX", postgres_url)
    return postgres_url


def test_every_command_works_on_a_postgres_index(demo_in_postgres: str, tmp_path: Path) -> None:
    note = tmp_path / "zebra_note.md"
    note.write_text("# Zebra crossing\n\nThe office zebra crossing is repainted every March by Facilities.\n")
    ingested = json.loads(rag("ingest", str(note), "--json"))
    assert (ingested["new"], ingested["failed"]) == (1, [])
    listed = {s["path"] for s in json.loads(rag("sources", "--json"))}
    assert "data/handbook.pdf" in listed and any(path.endswith("zebra_note.md") for path in listed)

    answer = json.loads(rag("ask", QUESTION, "--json"))
    assert answer["answered"] and "20 vacation days" in answer["answer"]
    assert {c["source"] for c in answer["citations"]} == {"data/handbook.pdf"}
    zebra = json.loads(rag("ask", "When is the zebra crossing repainted?", "--json"))
    assert "March" in zebra["answer"] and zebra["citations"][0]["source"].endswith("zebra_note.md")

    chat = rag("chat", stdin="What is the hotel cap in high-cost cities?\nAnd in other cities?\nexit\n")
    assert "$350" in chat and "$250" in chat  # the follow-up was read in the first question's context

    created = json.loads(rag("keys", "create", "--name", "alice", "--groups", "staff", "--json"))
    keys = open_backend(demo_in_postgres).key_store()
    assert keys.authenticate(created["key"]).groups == ("staff",)
    assert [k["name"] for k in json.loads(rag("keys", "list", "--json"))] == ["alice"]
    rag("keys", "revoke", "alice")
    assert json.loads(rag("keys", "list", "--json")) == [] and keys.authenticate(created["key"]) is None

    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "q1", "question": QUESTION, "answers": ["20 vacation days"], "sources": ["data/handbook.pdf"]}) + "\n")
    rag("eval", "answers", "--dataset", str(gold), "--out", str(tmp_path / "runs"))
    [run] = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "summary.json").read_text())["configs"]["default"]["metrics"]
    assert metrics["citation_precision"]["mean"] == 1.0 and metrics["context_source_recall"]["mean"] == 1.0

    removed = json.loads(rag("remove", str(note), "--json"))
    assert removed["removed"] == 1
    assert not any(s["path"].endswith("zebra_note.md") for s in json.loads(rag("sources", "--json")))
    after = json.loads(rag("ask", "When is the zebra crossing repainted?", "--json"))
    assert not any(c["source"].endswith("zebra_note.md") for c in after["citations"])


def test_index_copy_carries_api_keys_both_ways(demo_in_postgres: str, tmp_path: Path) -> None:
    pg_keys = open_backend(demo_in_postgres).key_store()
    _, kept = pg_keys.create("bob", ("hr",))
    _, dropped = pg_keys.create("carol", (), admin=True)
    assert pg_keys.revoke("carol")
    folder = tmp_path / "copy"
    report = json.loads(rag("index", "copy", demo_in_postgres, str(folder), "--json"))
    assert report["keys"] == 2
    folder_keys = open_backend(folder).key_store()
    assert folder_keys.authenticate(kept).groups == ("hr",)
    assert folder_keys.authenticate(dropped) is None  # still revoked
    assert {k.name for k in folder_keys.list(include_revoked=True)} == {"bob", "carol"}

    _, made_in_folder = folder_keys.create("dave", ("staff",))
    back = json.loads(rag("index", "copy", str(folder), demo_in_postgres, "--json"))
    assert back["keys"] == 1  # bob and carol are there already
    assert pg_keys.authenticate(made_in_folder).name == "dave" and pg_keys.authenticate(kept).name == "bob"
