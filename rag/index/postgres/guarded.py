"""Cursors whose connection-level failures become a clear `rag.errors.Unavailable` (the server stopped, the network
dropped), with the database named by its masked URL and no driver traceback.

Every connection rag opens uses `GuardedCursor` (as `cursor_factory`), so `conn.execute` is covered too. The error
is also a `psycopg.OperationalError`, so code that handles driver errors (the pool, rollbacks) keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from rag.errors import Unavailable


class DatabaseUnavailable(Unavailable, psycopg.OperationalError):
    """The database server cannot be reached (or dropped the connection) right now."""


def lost(url: str, exc: BaseException) -> DatabaseUnavailable:
    """The error for a failed connection, with the password masked in both the URL and the driver's text."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    from urllib.parse import urlsplit

    from rag.index.backends import masked

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return DatabaseUnavailable(
        f"cannot use the PostgreSQL index at {masked(url)}: {text}",
        "check that the server runs and the URL, user and password (URL, PGPASSWORD or ~/.pgpass) are right; "
        "requests work again as soon as it is back",
    )


def _dropped(conn: psycopg.Connection[Any], exc: BaseException) -> DatabaseUnavailable:
    """The error for a connection lost mid-use (the URL rebuilt from the connection: it never holds a password)."""
    info = conn.info
    if info.host.startswith("/"):  # a unix socket's folder
        where = f"postgresql://{info.user}@/{info.dbname}?host={info.host}"
    else:
        where = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    return lost(where, exc)


class GuardedCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute(*args, **kwargs)
        except psycopg.OperationalError as exc:
            raise self._translated(exc) from None

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().executemany(*args, **kwargs)
        except psycopg.OperationalError as exc:
            raise self._translated(exc) from None

    @contextmanager
    def copy(self, *args: Any, **kwargs: Any) -> Iterator[psycopg.Copy]:
        try:
            with super().copy(*args, **kwargs) as copy:
                yield copy
        except psycopg.OperationalError as exc:
            raise self._translated(exc) from None

    def _translated(self, exc: psycopg.OperationalError) -> psycopg.OperationalError:
        """A query-level problem (a cancelled statement, a lock timeout) stays the driver's error; a dropped
        connection becomes `DatabaseUnavailable`."""
        if isinstance(exc, DatabaseUnavailable) or not self.connection.broken:
            return exc
        return _dropped(self.connection, exc)
