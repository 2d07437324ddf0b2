"""deploy/: the compose file a user copies cannot be run here (no Docker daemon), so check what can be checked:
it parses, every rag replica serves the PostgreSQL index on all interfaces, the load balancer names exactly those
replicas, and the Ray services run the image that has rag in it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def services() -> dict[str, dict]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def replicas() -> dict[str, dict]:
    return {name: s for name, s in services().items() if s.get("command", [])[:2] == ["rag", "serve"]}


def test_compose_has_pgvector_two_replicas_a_load_balancer_and_optional_ray() -> None:
    found = services()
    assert found["db"]["image"].startswith("pgvector/pgvector:")
    assert len(replicas()) >= 2
    assert found["lb"]["image"].startswith("nginx:") and set(found["lb"]["depends_on"]) == set(replicas())
    for name in ("ray-head", "ray-worker"):
        assert found[name]["profiles"] == ["ray"] and found[name]["image"] == found["rag-1"]["image"]
    assert "--address=ray-head:6379" in found["ray-worker"]["command"]


def test_every_replica_serves_the_postgres_index_on_all_interfaces_without_a_password_in_the_url() -> None:
    for name, service in replicas().items():
        assert service["command"][service["command"].index("--host") + 1] == "0.0.0.0", name
        url = service["environment"]["RAG_INDEX"]
        assert url.startswith("postgresql://") and ":" not in url.split("@")[0].removeprefix("postgresql://"), name
        assert "PGPASSWORD" in service["environment"] and service["depends_on"]["db"]["condition"] == "service_healthy"


def test_nginx_upstream_names_exactly_the_compose_replicas_on_the_port_they_serve() -> None:
    upstream = re.findall(r"^\s*server\s+([\w-]+):(\d+)", (DEPLOY / "nginx.conf").read_text(), flags=re.M)
    assert {host for host, _ in upstream} == set(replicas())
    for host, port in upstream:
        command = replicas()[host]["command"]
        assert command[command.index("--port") + 1] == port
    mounted = services()["lb"]["volumes"][0].split(":")
    assert (DEPLOY / mounted[0]).resolve() == DEPLOY / "nginx.conf"


def test_dockerfile_installs_the_extras_the_services_need() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    extras = re.search(r"ARG EXTRAS=([\w,]+)", dockerfile).group(1).split(",")  # type: ignore[union-attr]
    assert {"postgres", "serve", "ray"} <= set(extras)
    assert services()["rag-1"]["build"]["dockerfile"] == "deploy/Dockerfile"
