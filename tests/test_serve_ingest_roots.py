"""Which server paths POST /v1/ingest may read (`serve.ingest_roots`); the server-level refusal is in test_serve.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import RagConfig
from rag.serve.errors import ApiError
from rag.serve.writes import check_ingest_roots


def test_paths_inside_a_root_pass_and_the_default_root_is_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    check_ingest_roots(["docs", "docs/../docs/a.md", str(tmp_path / "docs")], RagConfig().serve.ingest_roots)


def test_a_path_outside_every_root_is_refused_with_the_setting_to_change(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "private").mkdir()
    check_ingest_roots([str(tmp_path / "public" / "a.md")], [str(tmp_path / "public"), "/nonexistent-root"])
    with pytest.raises(ApiError) as refused:
        check_ingest_roots([str(tmp_path / "public" / ".." / "private" / "b.md")], [str(tmp_path / "public")])
    assert refused.value.status == 403 and "serve.ingest_roots" in refused.value.message


def test_no_roots_means_no_server_paths(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="server paths are off"):
        check_ingest_roots([str(tmp_path)], [])


def test_a_name_no_file_can_have_is_left_to_the_ingest_to_report(tmp_path: Path) -> None:
    check_ingest_roots(["/etc/pass\x00wd", str(tmp_path / "\udcff.md")], [str(tmp_path)])  # no 500 for either
