"""`RoundTripCounter`: counts the round trips between rag and a real PostgreSQL server.

A byte-for-byte relay between clients and the server's unix socket (nothing is changed: the client speaks the
real protocol to the real server). It reads the client's side of the wire protocol and counts the messages after
which a client waits for the server: each simple query ('Q', one or several statements in one string), each Sync
('S', which ends an extended-protocol query, or a whole pipeline of them in psycopg's pipeline mode), and each
connection's startup. Statements sent together therefore count once, as on the network, whatever the timing.
"""

from __future__ import annotations

import selectors
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class RoundTripCounter:
    """Use `url` instead of the server's URL; `count` is the round trips since the last `reset()`."""

    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        self._target = str(Path(parse_qs(parts.query)["host"][0]) / f".s.PGSQL.{parts.port or 5432}")
        self._folder = tempfile.mkdtemp(prefix="rag-rt-")  # short: a unix socket path is limited to ~100 characters
        self.url = server_url.replace(parse_qs(parts.query)["host"][0], self._folder)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(Path(self._folder) / f".s.PGSQL.{parts.port or 5432}"))
        self._listener.listen()
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._count = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def reset(self) -> None:
        with self._lock:
            self._count = 0

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        shutil.rmtree(self._folder, ignore_errors=True)  # the socket's folder: nothing of a run stays in /tmp

    def _waits(self, pending: bytearray, started: bool) -> tuple[int, bool]:
        """How many complete messages in `pending` make the client wait (they are consumed); whether the startup
        message has been read."""
        waits = 0
        while True:
            if not started:  # the startup message: a length, no type byte
                if len(pending) < 4 or len(pending) < struct.unpack("!i", pending[:4])[0]:
                    return waits, started
                del pending[: struct.unpack("!i", pending[:4])[0]]
                waits, started = waits + 1, True
                continue
            if len(pending) < 5 or len(pending) < 1 + struct.unpack("!i", pending[1:5])[0]:
                return waits, started
            kind, length = pending[:1], struct.unpack("!i", pending[1:5])[0]
            del pending[: 1 + length]
            waits += kind in (b"Q", b"S")

    def _relay(self) -> None:
        clients: dict[socket.socket, tuple[bytearray, bool]] = {}  # client -> (bytes not parsed yet, startup read)
        while not self._stopped.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                if key.fileobj is self._listener:
                    client, _ = self._listener.accept()
                    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    server.connect(self._target)
                    self._selector.register(client, selectors.EVENT_READ, (server, client))
                    self._selector.register(server, selectors.EVENT_READ, (client, client))
                    clients[client] = (bytearray(), False)
                    continue
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                if source.fileno() < 0:  # closed earlier in this round, with its peer
                    continue
                peer, client = key.data
                data = source.recv(1 << 16)
                if not data:
                    for end in (source, peer):
                        if end in self._selector.get_map():
                            self._selector.unregister(end)
                        end.close()
                    clients.pop(client, None)
                    continue
                if source is client:
                    pending, started = clients[client]
                    pending += data
                    waits, started = self._waits(pending, started)
                    clients[client] = (pending, started)
                    with self._lock:
                        self._count += waits
                peer.sendall(data)
