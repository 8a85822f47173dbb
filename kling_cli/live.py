"""The live displays on a terminal, drawn with rich (imported only here): the wait table, the
batch bar and a transfer's byte bar. progress.py chooses them."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from . import tasks
from .env import Env
from .output import Column, counted, fit_columns
from .progress import describe

if TYPE_CHECKING:
    from .jobs import Job


STATE_STYLES = {
    tasks.State.COMPLETED: "green",
    tasks.State.FAILED: "red",
    tasks.State.PENDING: "yellow",
}


class LiveWait:
    """A row per task (status, progress, elapsed), redrawn in place on the terminal."""

    live = True

    def __init__(self, env: Env):
        from rich.live import Live

        self.started = time.monotonic()
        self.rows: dict[int, Job] = {}
        self.console = env.rich_console(env.stderr, terminal=True)
        self.display = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=4, transient=False
        )
        self.display.start()

    def _render(self) -> Any:
        elapsed = f"{int(time.monotonic() - self.started)}s"
        everything = list(self.rows.values())
        # The header, a summary line and the cursor take three lines; the rest holds tasks.
        shown = rows_that_fit(everything, max(3, self.console.size.height - 3))
        table = wait_table(shown, self.console.width, elapsed)
        if len(shown) == len(everything):
            return table
        from rich.console import Group

        counts = Counter(describe(job)[0] for job in everything)
        summary = ", ".join(f"{n} {status}" for status, n in counts.most_common())
        hidden = len(everything) - len(shown)
        return Group(table, f"{counted(len(everything), 'task')}: {summary} ({hidden} not shown)")

    def update(self, job: Job) -> None:
        self.rows[job.order] = job

    def transfer(self, job: Job) -> None:
        pass  # the row or line is redrawn from the job as it stands

    def close(self) -> None:
        self.display.stop()


def wait_table(jobs: list[Job], width: int, elapsed: str) -> Any:
    """A row per task, each on one line of `width` columns. The ids stay whole, for copying:
    in a narrow terminal the elapsed time goes first, then the gaps narrow, then the progress
    and the status give way (cut with an ellipsis)."""
    from rich.cells import cell_len
    from rich.table import Table

    rows = []
    for job in jobs:
        status, detail = describe(job)
        if status == "error":
            detail = ""  # the command says why, once, below the table (a stall keeps its %)
        style = STATE_STYLES[job.view.state] if job.error is None else "red"
        rows.append((job.name, status, style, detail))
    ids = max([cell_len("task"), *(cell_len(row[0]) for row in rows)])
    # The status keeps room for "in_progress", so rows do not jump as it changes.
    state = max([11, *(cell_len(row[1]) for row in rows)])
    progress = max([cell_len("progress"), *(cell_len(row[3]) for row in rows)])
    clock = max(cell_len("elapsed"), cell_len(elapsed))
    gap, widths = fit_columns(
        width - ids,
        [
            Column("status", state, state, state),
            Column("progress", progress, min(progress, 8), min(progress, 4)),  # or "100%"
            Column("elapsed", clock, clock, clock),
        ],
    )
    table = Table(
        box=None, header_style="bold", pad_edge=False, collapse_padding=gap == 1, padding=(0, 1)
    )
    table.add_column("task", width=min(ids, width), no_wrap=True, overflow="ellipsis")
    for name, column_width in widths.items():
        table.add_column(
            name,
            width=column_width,
            no_wrap=True,
            overflow="ellipsis",
            justify="left" if name == "status" else "right",
        )
    for name, status, style, detail in rows:
        cells = {"status": f"[{style}]{status}[/]", "progress": detail, "elapsed": elapsed}
        table.add_row(name, *(cells[column] for column in widths))
    return table


def rows_that_fit(rows: list[Job], room: int) -> list[Job]:
    """At most `room` rows, in their order: the tasks still running first, since those are
    the ones being watched; then the finished ones, while there is room."""
    if len(rows) <= room:
        return rows
    running = [i for i, job in enumerate(rows) if not job.done]
    finished = [i for i, job in enumerate(rows) if job.done]
    return [rows[i] for i in sorted((running + finished)[:room])]


class LiveTransfer:
    """A byte bar with speed; rich redraws it at most 10 times a second."""

    def __init__(self, env: Env, label: str, total: int | None = None):
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class Speed(TransferSpeedColumn):
            """The speed once there is one to show: nothing before, not rich's `?`."""

            def render(self, task: Any) -> Text:
                if (task.finished_speed or task.speed) is None:
                    return Text("")
                return super().render(task)

        console = env.rich_console(env.stderr, terminal=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            Speed(),
            console=console,
            refresh_per_second=10,
            transient=False,
        )
        self.task_id = self.progress.add_task(label, total=total)
        self.progress.start()

    def advance(self, done: int, total: int | None) -> None:
        self.progress.update(self.task_id, completed=done, total=total)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.progress.stop()
