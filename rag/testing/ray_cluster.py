"""A real Ray cluster of several nodes on this machine (loopback), for tests and benchmarks of `rag ingest --ray`.

    with local_ray_cluster(nodes=2) as address:      # a head plus one worker node, one CPU each
        subprocess.run(["rag", "ingest", "docs/", "--ray", address])

Each node is a `ray start --block` process: stopping it stops exactly the Ray processes it started (never
`ray stop`, which would end every Ray cluster of this user on the machine). Needs the `ray` extra.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["local_ray_cluster"]


@contextmanager
def local_ray_cluster(nodes: int = 2, cpus_per_node: int = 1, timeout_s: float = 120) -> Iterator[str]:
    """Start a head and `nodes - 1` worker nodes on 127.0.0.1; yields the head's address (HOST:PORT)."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="rag-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_node(cpus_per_node, folder, "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={folder}"))
        _wait_for_nodes(address, 1, started[-1], timeout_s)
        for count in range(2, nodes + 1):
            started.append(_node(cpus_per_node, folder, f"--address={address}"))
            _wait_for_nodes(address, count, started[-1], timeout_s)
        yield address
    finally:
        for node in reversed(started):
            node.terminate()
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _node(cpus: int, folder: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [_ray_executable(), "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--disable-usage-stats", *args]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_nodes(address: str, count: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`ray start` exited with code {process.returncode} while starting node {count} of {address}")
        done = subprocess.run([_ray_executable(), "status", f"--address={address}"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.count(" node_") >= count:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {count} nodes in {timeout_s:.0f} s")


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")  # the `ray` script of this environment
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
