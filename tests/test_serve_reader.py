"""The routes the UI's API mode uses (rag.serve.reader_routes) and SSO sign-in by a trusted header
(rag.serve.trusted_header), on the real app in process over an index whose data/hr/ only group `hr` may read."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.config import load_config
from rag.index.backends import open_backend
from rag.serve.app import create_app

pytestmark = pytest.mark.slow

INDEX = ".rag/demo"
SALARY = "data/hr/salary_bands.md"


@pytest.fixture(scope="module")
def keys(hr_workdir: Path) -> dict[str, str]:
    store = open_backend(hr_workdir / INDEX).key_store()
    made = {}
    for name, groups, admin in (("ui-staff", ("staff",), False), ("ui-hr", ("hr",), False), ("ui-admin", (), True)):
        if not any(k.name == name for k in store.list()):
            made[name] = store.create(name, groups, admin)[1]
    return made


@pytest.fixture(scope="module")
def client(hr_workdir: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    config = load_config(None, ["serve.trusted_user_header=X-Forwarded-User", "serve.trusted_proxies=[\"127.0.0.1\"]"])
    with TestClient(create_app(hr_workdir / INDEX, config), client=("127.0.0.1", 50000)) as local:
        yield local


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def salary_ref(client: TestClient, key: str) -> dict[str, str]:
    passages = client.post("/v1/ask", json={"question": "salary band Senior Software Engineer E3 Portland", "top_k": 20}, headers=bearer(key)).json()["passages"]
    found = next(p for p in passages if p["source"] == SALARY)
    return {"source": found["source"], "doc_id": found["doc_id"]}


def test_me_says_who_the_caller_is(client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/v1/me", headers=bearer(keys["ui-staff"])).json() == {"name": "ui-staff", "groups": ["staff"], "admin": False}
    assert client.get("/v1/me", headers=bearer(keys["ui-admin"])).json()["admin"] is True
    refused = client.get("/v1/me", headers=bearer("rag_wrong"))
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "unknown or revoked API key"


def test_a_document_is_served_only_to_keys_that_may_read_it(client: TestClient, keys: dict[str, str], hr_workdir: Path) -> None:
    ref = salary_ref(client, keys["ui-hr"])
    shown = client.post("/v1/document", json=ref, headers=bearer(keys["ui-hr"]))
    assert shown.status_code == 200
    assert shown.json()["text"] == (hr_workdir / SALARY).read_text(encoding="utf-8") or "$166,000" in shown.json()["text"]
    hidden = client.post("/v1/document", json=ref, headers=bearer(keys["ui-staff"]))
    missing = client.post("/v1/document", json={"source": "data/hr/nothing.md", "doc_id": "x"}, headers=bearer(keys["ui-staff"]))
    assert hidden.status_code == missing.status_code == 404 and hidden.json() == missing.json()  # says nothing about existence
    public = client.post("/v1/document", json={"source": "data/oncall_policy.md", "doc_id": "data/oncall_policy.md"}, headers=bearer(keys["ui-staff"]))
    assert public.status_code == 200 and public.json()["sections"]


def test_uploads_need_an_admin_key_and_are_ingested_with_their_groups(client: TestClient, keys: dict[str, str], hr_workdir: Path) -> None:
    body = {"files": [{"name": "../bonus_plan.md", "content_base64": base64.b64encode(b"# Bonus plan\n\nThe ZEPHYR-BONUS is 7 percent.\n").decode()}], "groups": ["hr"]}
    refused = client.post("/v1/upload", json=body, headers=bearer(keys["ui-staff"]))
    assert refused.status_code == 403 and "admin key" in refused.json()["error"]["message"]
    done = client.post("/v1/upload", json=body, headers=bearer(keys["ui-admin"]))
    assert done.status_code == 200, done.text
    assert done.json()["new"] == 1 and (open_backend(hr_workdir / INDEX).uploads_dir() / "bonus_plan.md").is_file()
    try:
        question = {"question": "What is the ZEPHYR-BONUS?", "top_k": 5}
        assert "bonus_plan.md" in client.post("/v1/ask", json=question, headers=bearer(keys["ui-hr"])).text
        assert "bonus_plan.md" not in client.post("/v1/ask", json=question, headers=bearer(keys["ui-staff"])).text
        bad = client.post("/v1/upload", json={"files": [{"name": "a.md", "content_base64": "%%%"}]}, headers=bearer(keys["ui-admin"]))
        assert bad.status_code == 422 and "content_base64" in bad.json()["error"]["message"]
    finally:
        uploaded = str(open_backend(hr_workdir / INDEX).uploads_dir() / "bonus_plan.md")
        assert client.post("/v1/remove", json={"paths": [uploaded]}, headers=bearer(keys["ui-admin"])).status_code == 200


def test_a_trusted_proxy_signs_users_in_by_header(client: TestClient, keys: dict[str, str], hr_workdir: Path) -> None:
    assert client.get("/v1/me", headers={"X-Forwarded-User": "ui-hr"}).json() == {"name": "ui-hr", "groups": ["hr"], "admin": False}
    unknown = client.get("/v1/me", headers={"X-Forwarded-User": "mallory"})
    assert unknown.status_code == 403 and "rag keys create --name mallory" in unknown.json()["error"]["message"]
    config = load_config(None, ["serve.trusted_user_header=X-Forwarded-User", "serve.trusted_proxies=[\"127.0.0.1\"]"])
    with TestClient(create_app(hr_workdir / INDEX, config), client=("10.1.2.3", 50000)) as elsewhere:  # not the proxy
        assert elsewhere.get("/v1/me", headers={"X-Forwarded-User": "ui-hr"}).status_code == 401


def test_the_header_is_ignored_unless_configured(hr_workdir: Path, keys: dict[str, str]) -> None:
    with TestClient(create_app(hr_workdir / INDEX, load_config(None, [])), client=("127.0.0.1", 50000)) as plain:
        assert plain.get("/v1/me", headers={"X-Forwarded-User": "ui-admin"}).status_code == 401
    with pytest.raises(Exception, match="not an IP address"):
        load_config(None, ["serve.trusted_proxies=[\"proxy.example\"]"])
