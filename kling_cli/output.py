"""Results on stdout: JSON documents, quiet values, or human lines (readable on a terminal,
stable tab-separated lines when piped). Nothing else is ever written to stdout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .env import Env
from .errors import UsageError

if TYPE_CHECKING:
    from .tasks import TaskView


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
    if columns:
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


def choose(env: Env, json_flag: bool, quiet: bool) -> Format:
    """The output format of a command; with --json, errors are reported as JSON too."""
    env.json_errors = json_flag
    if json_flag and quiet:  # one would silently win over the other
        raise UsageError("--json and -q cannot be used together")
    return Format.JSON if json_flag else Format.QUIET if quiet else Format.HUMAN


@dataclass
class Output:
    env: Env
    format: Format

    def _line(self, text: str) -> None:
        print(text, file=self.env.stdout, flush=True)

    def json(self, document: Any) -> None:
        """Pretty (and coloured, where colour is welcome) on a terminal; one line when piped."""
        if self.env.stdout_tty and self.env.color:
            console = self.env.rich_console(self.env.stdout, terminal=True)
            console.print_json(data=document, ensure_ascii=self.env.ascii_only)
        elif self.env.stdout_tty:
            self._line(json.dumps(document, indent=2, ensure_ascii=self.env.ascii_only))
        else:
            self._line(json.dumps(document, ensure_ascii=False, separators=(",", ":")))

    def task(self, task: TaskView, files: Sequence[Path] = (), quiet_value: str = "") -> None:
        """One task. `quiet_value` is what -q prints for this command (CLI.md)."""
        if self.format is Format.JSON:
            document = dict(task.raw)  # the status as it came
            if files:
                document["output_files"] = [str(Path(f).resolve()) for f in files]
            self.json(document)
        elif self.format is Format.QUIET:
            if quiet_value:
                self._line(quiet_value)
        else:
            self._line(task_line(task, files, self.env.stdout_tty))

    def value(self, text: str) -> None:
        self._line(text)


def task_line(task: TaskView, files: Sequence[Path], tty: bool) -> str:
    """`ID  STATUS  PROGRESS  DETAIL`: tab-separated when piped, aligned on a terminal."""
    task_id, status, progress = task.id or "?", task.status, task.progress
    if files:
        detail = " ".join(str(f) for f in files)
    elif task.failed:
        detail = task.error_text
    else:
        detail = task.video_url or ""
    fields = [task_id, status, "-" if progress is None else f"{progress}%", detail]
    if tty:
        return f"{task_id}  {status:<11} {fields[2]:>4}  {detail}".rstrip()
    return "\t".join(fields)


def quiet_result(task: TaskView, files: Sequence[Path]) -> str:
    """What -q prints once a task is done: the saved path, else the video URL."""
    if files:
        return "\n".join(str(Path(f).resolve()) for f in files)
    return task.video_url or ""
