"""Progress of a load run, as it happens: which configuration, how many users, rps so far.

`run_matrix` reports to a `LoadProgress`; `RichProgress` draws it on stderr, `QuietProgress`
drops it (for callers that print their own).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class LoadProgress(Protocol):
    def config_started(self, index: int, total: int, name: str, seconds: float) -> None: ...

    def update(self, status: dict[str, Any]) -> None: ...

    def config_done(self, name: str, summary: str) -> None: ...

    def note(self, text: str) -> None: ...


class QuietProgress:
    def config_started(self, index: int, total: int, name: str, seconds: float) -> None:
        pass

    def update(self, status: dict[str, Any]) -> None:
        pass

    def config_done(self, name: str, summary: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class RichProgress:
    """One bar per configuration: `[i/n] name  users  requests  rps`, on the given console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.seconds = 0.0

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def config_started(self, index: int, total: int, name: str, seconds: float) -> None:
        self.seconds = seconds
        self.task = self.progress.add_task(
            f"[{index}/{total}] {name:<4}", total=seconds, status="starting the gateway"
        )

    def update(self, status: dict[str, Any]) -> None:
        if self.task is None:
            return
        if status.get("phase") == "login":
            text = f"{status.get('users', 0):>3} users, {status.get('tokens', 0)} tokens obtained"
            self.progress.update(self.task, completed=0, status=text)
            return
        text = (
            f"{status.get('users', 0):>3} users  {status.get('requests', 0):>7} requests  "
            f"{status.get('rps', 0.0):>7.1f} rps"
        )
        if status.get("failures"):
            text += f"  [red]{status['failures']} failed[/]"
        self.progress.update(self.task, completed=status.get("elapsed", 0.0), status=text)

    def config_done(self, name: str, summary: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.seconds, status=summary)
        self.task = None

    def note(self, text: str) -> None:
        self.progress.console.print(text, highlight=False)
