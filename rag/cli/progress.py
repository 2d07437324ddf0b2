"""Progress bars on stderr (stdout stays clean for --json)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rag.core.progress import Progress as ProgressSink


class RichProgress(ProgressSink):
    """One bar per phase; phases with nothing to do stay hidden."""

    def __init__(self, console: Console) -> None:
        self._bars = Progress(
            TextColumn("{task.description:<17}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> "RichProgress":
        self._bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._bars.stop()

    def phase(self, name: str, total: int | None) -> None:
        self._tasks[name] = self._bars.add_task(name, total=total, visible=bool(total))

    def advance(self, name: str, amount: int = 1, total: int | None = None) -> None:
        task = self._tasks[name]
        if total is not None:
            current = self._bars.tasks[self._tasks[name]].total or 0
            self._bars.update(task, total=current + total, visible=bool(current + total))
        self._bars.advance(task, amount)
