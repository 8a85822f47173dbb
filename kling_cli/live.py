"""The live displays on a terminal, drawn with rich (imported only here): the wait table, the
batch bar with a row per line in flight, and a transfer's byte bar. progress.py chooses them.

A live display is redrawn in place on stderr. A result for stdout, and any message on stderr
(the Ui's `Screen`), is written with the display out of the way (`above`): it is taken down,
the line written, and drawn again below it at once, so a line never lands inside the area that
the next redraw overwrites.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import present
from .api.tasks import State
from .output import Column, counted, fit_columns
from .progress import NullDisplay
from .text import printable

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live
    from rich.table import Table

    from .context import Ui
    from .engine.jobs import Job


STATE_STYLES = {State.COMPLETED: "green", State.FAILED: "red", State.PENDING: "yellow", None: "red"}
MAX_BATCH_ROWS = 12  # lines in flight shown under the batch bar


class _Live(NullDisplay):
    """What both live displays share: rich's Live on stderr, taken down for each result and
    drawn afresh below it (a new Live each time: one knows nothing of what came between).
    No `transfer`: a row is redrawn from its job as it stands."""

    def __init__(self, ui: Ui):
        self.started = time.monotonic()
        self.console = ui.rich_console(ui.stderr)
        self._lock = threading.RLock()
        self._aside = False  # taken down for a result: what it writes needs no more
        self.display = self._start()
        self.screen = ui.screen
        self.screen.above = self.above  # the Ui's messages too

    def _start(self, draw: bool = False) -> Live:
        """A Live on the console; `draw`: drawn at once (back below a result), not at its
        first refresh: results that come faster than that would keep it off the screen."""
        from rich.live import Live

        display = Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=4,
            transient=True,  # taken down for each result (close() leaves the last frame)
            redirect_stdout=False,
            redirect_stderr=False,
        )
        display.start(refresh=draw)
        return display

    def render(self) -> RenderableType:
        raise NotImplementedError

    def above(self, write: Callable[[], None]) -> None:
        with self._lock:
            if self._aside or not self.display.is_started:
                write()
                return
            self._aside = True
            self.display.stop()
            try:
                write()
            finally:
                self.display = self._start(draw=True)
                self._aside = False

    def close(self) -> None:
        """The last frame stays on the screen, below the results: how everything ended."""
        with self._lock:
            if self.screen.above == self.above:
                self.screen.above = None
            self.display.transient = False
            self.display.stop()


class LiveWait(_Live):
    """A row per task (status, progress, elapsed), redrawn in place on the terminal."""

    def __init__(self, ui: Ui):
        self.rows: dict[int, Job] = {}
        super().__init__(ui)

    def render(self) -> RenderableType:
        elapsed = f"{int(time.monotonic() - self.started)}s"
        everything = list(self.rows.values())
        # The header, a summary line and the cursor take three lines; the rest holds tasks.
        shown = rows_that_fit(everything, max(3, self.console.size.height - 3))
        table = wait_table(shown, self.console.width, elapsed)
        if len(shown) == len(everything):
            return table
        from rich.console import Group
        from rich.text import Text

        counts = Counter(present.job(job).status for job in everything)
        summary = ", ".join(f"{n} {status}" for status, n in counts.most_common())
        hidden = len(everything) - len(shown)
        # Text, not a str: a status is the service's words, never markup (nor highlighted).
        line = Text(
            f"{counted(len(everything), 'task')}: {summary} ({hidden} not shown)",
            no_wrap=True,
            overflow="ellipsis",
        )
        return Group(table, line)

    def change(self, job: Job) -> None:
        self.rows[job.order] = job

    done = change


def wait_table(jobs: list[Job], width: int, elapsed: str) -> Table:
    """A row per task, each on one line of `width` columns. The ids stay whole, for copying:
    in a narrow terminal the elapsed time goes first, then the gaps narrow, then the progress
    and the status give way (cut with an ellipsis)."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    rows = [(printable(job.name), present.job(job)) for job in jobs]
    ids = max([cell_len("task"), *(cell_len(name) for name, _ in rows)])
    # The status keeps room for "in_progress", so rows do not jump as it changes.
    state = max([11, *(cell_len(shown.status) for _, shown in rows)])
    progress = max([cell_len("progress"), *(cell_len(shown.progress) for _, shown in rows)])
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
    for name, shown in rows:
        cells = {
            "status": Text(shown.status, style=STATE_STYLES[shown.state]),
            "progress": Text(shown.progress),
            "elapsed": Text(elapsed),
        }
        table.add_row(Text(name), *(cells[column] for column in widths))
    return table


def rows_that_fit(rows: list[Job], room: int) -> list[Job]:
    """At most `room` rows, in their order: the tasks still running first, since those are
    the ones being watched; then the finished ones, while there is room."""
    if len(rows) <= room:
        return rows
    running = [i for i, job in enumerate(rows) if not job.done]
    finished = [i for i, job in enumerate(rows) if job.done]
    return [rows[i] for i in sorted((running + finished)[:room])]


class LiveBatch(_Live):
    """An overall bar (done; completed, then the others as the summary names them: failed,
    refused ...; running; ETA) and a row for each line in flight."""

    def __init__(self, ui: Ui, total: int):
        self.total = total
        self.active: dict[int, Job] = {}
        self.completed = 0
        self.ended: Counter[tuple[str, str]] = Counter()  # lines that did not complete, by kind
        super().__init__(ui)

    def render(self) -> RenderableType:
        from rich.cells import cell_len
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        width = self.console.width
        finished = self.completed + sum(self.ended.values())
        elapsed = time.monotonic() - self.started
        # The time left, once a line has finished to measure by.
        eta = f", ETA {(self.total - finished) * elapsed / finished:.0f}s" if finished else ""
        counts = Text.assemble(
            f"{finished}/{self.total} done, ",
            (f"{self.completed} completed", "green"),
            *[
                part
                for ended in present.outcome_counts(self.ended)
                for part in (", ", (ended, "red"))
            ],
            f", {len(self.active)} running{eta}",
            overflow="ellipsis",
            no_wrap=True,
        )
        bar_width = min(30, width - cell_len(counts.plain) - 1)
        head = Table.grid(padding=(0, 1) if bar_width >= 10 else 0)
        if bar_width >= 10:  # the bar and the counts on one line, as long as the bar is a bar
            head.add_row(ProgressBar(total=self.total, completed=finished, width=bar_width), counts)
        else:  # the bar above the counts
            head.add_row(ProgressBar(total=self.total, completed=finished, width=min(30, width)))
            head.add_row(counts)
        active = list(self.active.values())
        # Within the screen, with the head, the note of the rest and the cursor: a frame taller
        # than the screen scrolls, and what scrolled off is never erased (a stale frame above).
        room = self.console.size.height - len(head.rows) - 2
        shown = active[: max(0, min(MAX_BATCH_ROWS, room))]
        names = [f"line {job.order}" for job in shown]
        ids = [printable(job.task_id or "") for job in shown]
        # The ids stay whole, as in the wait table: the state gives way.
        fixed = max(map(cell_len, names), default=0) + max(map(cell_len, ids), default=0)
        gap = 2 if width - fixed - 4 >= 11 else 1
        room = width - fixed - 2 * gap
        rows = Table(box=None, show_header=False, pad_edge=False, collapse_padding=gap == 1)
        rows.add_column(no_wrap=True)
        rows.add_column(no_wrap=True)
        if room >= 3:
            rows.add_column(no_wrap=True, overflow="ellipsis", max_width=room)
        for job, name, task_id in zip(shown, names, ids, strict=True):
            words = present.job(job)
            state = Text(f"{words.status} {words.progress}".rstrip())
            rows.add_row(name, Text(task_id), *([state] if room >= 3 else []))
        parts: list[Any] = [head, rows]
        if len(active) > len(shown):
            parts.append(Text(f"({len(active) - len(shown)} more running)", style="dim"))
        return Group(*parts)

    def change(self, job: Job) -> None:
        if job.stage.value not in ("new", "done"):
            self.active[job.order] = job

    def done(self, job: Job) -> None:
        self.active.pop(job.order, None)
        if job.code == 0:
            self.completed += 1
        else:
            self.ended[present.outcome(job.code)] += 1


class LiveTransfer(NullDisplay):
    """A byte bar with speed; rich redraws it at most 10 times a second."""

    def __init__(self, ui: Ui, label: str, total: int | None = None):
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

        console = ui.rich_console(ui.stderr)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
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

    def close(self) -> None:
        self.progress.stop()
