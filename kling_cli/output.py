"""Results on stdout: JSON documents, quiet values, or human lines (readable on a terminal,
stable tab-separated lines when piped). Nothing else is ever written to stdout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import present
from .context import C1, json_line
from .errors import UsageError
from .text import printable

if TYPE_CHECKING:
    from .api.tasks import TaskView
    from .context import Ui


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 line`, `2 lines`, `0 lines`: a count and its noun, in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


@dataclass(frozen=True)
class Column:
    """A table column beside the task ids, for `fit_columns`: the width its widest cell
    needs, the least it gets with two spaces between columns, and the least it is worth
    showing at once columns close up to one space."""

    name: str
    natural: int
    comfortable: int
    narrow: int


def fit_columns(room: int, columns: list[Column]) -> tuple[int, dict[str, int]]:
    """(gap, widths): the columns, most wanted first, that fit in `room` cells beside the task
    ids, which stay whole (they are for copying). The first layout that fits of: all at ease,
    two spaces apart, then without the last, and so on down to two; then one space apart, at
    their narrowest, down to one; then the first alone, cut. Room left over widens the
    columns in order, up to their natural widths."""
    layouts: list[tuple[int, dict[str, int]]] = []
    for k in range(len(columns), 1, -1):
        layouts.append((2, {c.name: c.comfortable for c in columns[:k]}))
    for k in range(len(columns), 0, -1):
        layouts.append((1, {c.name: c.narrow for c in columns[:k]}))
    layouts.append((1, {columns[0].name: min(columns[0].natural, room - 1)}))
    for gap, widths in layouts:
        left = room - sum(gap + w for w in widths.values())
        if min(widths.values()) < 3 or left < 0:  # too narrow to say anything, or too wide
            continue
        for column in columns:
            if column.name in widths:
                grow = max(0, min(left, column.natural - widths[column.name]))
                widths[column.name] += grow
                left -= grow
        return gap, widths
    return 1, {}


class Format(str, Enum):
    HUMAN = "human"
    JSON = "json"
    QUIET = "quiet"


def choose(json_flag: bool, quiet: bool) -> Format:
    """The output format of a command (--json's errors are the Ui's, decided at start)."""
    if json_flag and quiet:  # one would silently win over the other
        raise UsageError("--json and -q cannot be used together")
    return Format.JSON if json_flag else Format.QUIET if quiet else Format.HUMAN


@dataclass
class Output:
    ui: Ui
    format: Format

    def _line(self, text: str) -> None:
        self.ui.stdout.write(text + "\n")
        self.ui.stdout.flush()

    def json(self, document: Any) -> None:
        """Pretty (and coloured, where colour is welcome) on a terminal; one line when piped."""
        if not self.ui.stdout_tty:
            self._line(json_line(document))
            return
        text = json.dumps(document, indent=2, ensure_ascii=self.ui.ascii_only).translate(C1)
        if not self.ui.color:
            self._line(text)
            return
        from rich.highlighter import JSONHighlighter
        from rich.text import Text

        console = self.ui.rich_console(self.ui.stdout)
        coloured = JSONHighlighter()(Text(text))
        console.print(coloured, soft_wrap=True)

    def task(
        self,
        task: TaskView,
        files: Sequence[Path] = (),
        quiet_value: Sequence[str] = (),
    ) -> None:
        """One task. `quiet_value`: what -q prints for this command (CLI.md), a line each."""
        if self.format is Format.JSON:
            self.json(present.document(task, files))
        elif self.format is Format.QUIET:
            for value in quiet_value:
                self.value(value)
        else:  # `ID  STATUS  PROGRESS  DETAIL`
            shown = present.task(task, files)
            fields = [task.id or "?", shown.status, shown.progress or "-", shown.detail]
            self.result(fields, TASK_WIDTHS)

    def value(self, text: str) -> None:
        """One value of -q (or a plain line): printable, one line."""
        self._line(printable(text))

    def row(self, *fields: str) -> None:
        """One row of fields: tab-separated, each printable (no tab or newline inside one)."""
        self._line(present.tsv(*fields))

    def result(self, fields: Sequence[str], widths: Sequence[int]) -> None:
        """A result row of human output. Piped: tab-separated, stable for scripts. On a
        terminal: each field padded to its width in `widths` (negative: aligned right), two
        spaces apart, the fields past `widths` as they are. The widths are known before the
        first row, so rows print as their results come and still line up; a wider field
        pushes its row along."""
        if not self.ui.stdout_tty:
            self.row(*fields)
            return
        from rich.cells import cell_len  # terminal cells: a CJK status is wide

        cells = [printable(field) for field in fields]
        for i, width in enumerate(widths[: len(cells)]):
            pad = " " * max(0, abs(width) - cell_len(cells[i]))
            cells[i] = pad + cells[i] if width < 0 else cells[i] + pad
        self._line("  ".join(cells).rstrip())


TASK_ID_WIDTH = 32  # "video_" and a ULID, as the service's ids are (API.md): known up front
STATUS_WIDTH = 11  # "in_progress", the longest word a task passes through: rows do not jump
TASK_WIDTHS = (TASK_ID_WIDTH, STATUS_WIDTH, -4)  # ID  STATUS  PROGRESS ("100%")  DETAIL


def line_widths(last_line: int) -> tuple[int, ...]:
    """The widths of a batch's result rows, `LINE  ID  STATUS  DETAIL`: the line numbers
    aligned right up to the run's last."""
    return (-len(str(last_line)), TASK_ID_WIDTH, STATUS_WIDTH)


def quiet_result(task: TaskView, files: Sequence[Path]) -> list[str]:
    """What -q prints once a task is done: the saved paths, else the video URL."""
    if files:
        return [str(Path(f).resolve()) for f in files]
    return [task.video_url] if task.video_url else []
