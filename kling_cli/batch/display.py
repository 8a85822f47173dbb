"""Batch progress on stderr: an overall bar and a row per line in flight on a terminal, a
plain line per change for CI logs, JSON events for programs (progress.JsonEvents), or nothing.
Each keeps only the lines in flight: memory does not grow with the file."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from .. import progress
from ..env import Env
from .lines import Line, LineState

if TYPE_CHECKING:
    from rich.console import RenderableType

MAX_ROWS = 12  # lines in flight shown under the bar


class BatchDisplay(Protocol):
    def change(self, line: Line) -> None: ...
    def done(self, line: Line) -> None: ...
    def transfer(self, line: Line) -> None: ...  # bytes of its video came in (any thread)
    def close(self) -> None: ...


def batch_display(env: Env, total: int, quiet: bool = False) -> BatchDisplay:
    mode = env.progress_mode(quiet)
    if mode == "json":
        return progress.JsonEvents(env)
    if mode == "live":
        return LiveBatch(env, total)
    if mode == "plain":
        return PlainBatch(env)
    return progress.NullDisplay()


def describe(line: Line) -> str:
    """A line's state in words: `sending`, `running 40%`, `completed FILE`, `error: ...`."""
    state = line.state
    if state is LineState.DONE:
        if line.error is not None:
            return f"error: {line.error.message}"
        detail = " ".join(str(f) for f in line.files) or line.view.video_url or ""
        return f"{line.view.status} {detail}".rstrip()
    if state in (LineState.TO_SEND, LineState.SENDING, LineState.DOWNLOADING):
        status = str(state.value)
    else:
        status = line.view.status
    if state in (LineState.TO_SEND, LineState.SENDING):
        return status
    percent = line.view.progress
    return f"{status} {percent}%" if percent is not None else status


class PlainBatch:
    """A line per change of a line's state, status or progress: readable in CI logs."""

    def __init__(self, env: Env):
        self.env = env
        self.seen: dict[int, str] = {}  # lines in flight: what was said of each

    def change(self, line: Line) -> None:
        state = describe(line)
        if self.seen.get(line.number) != state:
            self.seen[line.number] = state
            self.env.note(f"line {line.number} {line.task_id or ''} {state}".replace("  ", " "))

    def done(self, line: Line) -> None:
        self.change(line)
        self.seen.pop(line.number, None)

    def transfer(self, line: Line) -> None:
        pass  # the line is said again from the job as it stands

    def close(self) -> None:
        pass


class LiveBatch:
    """An overall bar (done, failed, running, ETA) and a row for each line in flight."""

    def __init__(self, env: Env, total: int):
        from rich.live import Live

        self.total = total
        self.started = time.monotonic()
        self.active: dict[int, Line] = {}
        self.completed = self.failed = 0
        self.console = env.rich_console(env.stderr, terminal=True)
        self.live = Live(get_renderable=self._render, console=self.console, refresh_per_second=4)
        self.live.start()

    def _render(self) -> RenderableType:
        from rich.cells import cell_len
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        width = self.console.width
        finished = self.completed + self.failed
        elapsed = time.monotonic() - self.started
        # The time left, once a line has finished to measure by.
        eta = f", ETA {(self.total - finished) * elapsed / finished:.0f}s" if finished else ""
        counts = Text.from_markup(
            f"{finished}/{self.total} done, [green]{self.completed} completed[/], "
            f"[red]{self.failed} failed[/], {len(self.active)} running{eta}",
            overflow="ellipsis",
        )
        counts.no_wrap = True
        bar_width = min(30, width - cell_len(counts.plain) - 1)
        head = Table.grid(padding=(0, 1) if bar_width >= 10 else 0)
        if bar_width >= 10:  # the bar and the counts on one line, as long as the bar is a bar
            head.add_row(ProgressBar(total=self.total, completed=finished, width=bar_width), counts)
        else:  # the bar above the counts
            head.add_row(ProgressBar(total=self.total, completed=finished, width=min(30, width)))
            head.add_row(counts)
        active = list(self.active.values())[:MAX_ROWS]
        names = [f"line {line.number}" for line in active]
        ids = [line.task_id or "" for line in active]
        # The ids stay whole, as in the wait table: the state gives way.
        fixed = max(map(cell_len, names), default=0) + max(map(cell_len, ids), default=0)
        gap = 2 if width - fixed - 4 >= 11 else 1
        room = width - fixed - 2 * gap
        rows = Table(box=None, show_header=False, pad_edge=False, collapse_padding=gap == 1)
        rows.add_column(no_wrap=True)
        rows.add_column(no_wrap=True)
        if room >= 3:
            rows.add_column(no_wrap=True, overflow="ellipsis", max_width=room)
        for line, name, task_id in zip(active, names, ids, strict=True):
            rows.add_row(name, task_id, *([describe(line)] if room >= 3 else []))
        return Group(head, rows)

    def change(self, line: Line) -> None:
        if line.state not in (LineState.TO_SEND, LineState.DONE):
            self.active[line.number] = line

    def done(self, line: Line) -> None:
        self.active.pop(line.number, None)
        if line.code == 0:
            self.completed += 1
        else:
            self.failed += 1

    def transfer(self, line: Line) -> None:
        pass  # the row is redrawn from the job as it stands

    def close(self) -> None:
        self.live.stop()
