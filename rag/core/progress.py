"""The progress sink that long jobs (ingestion, evaluation) report to; the CLI draws bars, the UI a progress line."""

from __future__ import annotations

from collections.abc import Callable


class Progress:
    """Receives progress events; this base class ignores them, so library callers can pass nothing.

    `phase(name, total)` announces a phase (total None or 0: unknown yet); `advance(name, amount, total)` moves it
    on by `amount` and, when `total` is given, grows the phase's total by that much.
    """

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, name: str, amount: int = 1, total: int | None = None) -> None: ...


ProgressFactory = Callable[[], Progress]
