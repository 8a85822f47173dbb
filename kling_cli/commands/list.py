"""kling list: the tasks this machine submitted (the local journal), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..env import Env
from ..output import Column, Format, Output, choose, fit_columns
from .common import JsonOpt, QuietOpt, env_of

if TYPE_CHECKING:
    from ..store.journal import Entry


@dataclass
class ListOptions:
    limit: int | None
    format: Format


def run_list(env: Env, opts: ListOptions) -> int:
    out = Output(env.ui, opts.format)
    entries = env.journal.entries(opts.limit)
    if opts.format is Format.JSON:
        for entry in entries:
            out.json(entry.as_json())
    elif opts.format is Format.QUIET:
        for entry in entries:
            out.value(entry.id)
    elif env.ui.stdout_tty:
        if entries and len(entries) > _table_rows(env):
            _aligned(env, entries)
        elif entries:
            _table(env, entries)
        else:
            env.ui.note("no tasks yet: submit one with `kling generate`")
    else:
        for entry in entries:
            out.row(*_fields(entry))
    return 0


def _fields(entry: Entry) -> list[str]:
    when = datetime.fromtimestamp(entry.submitted_at).astimezone().isoformat(timespec="seconds")
    prompt = " ".join(str(entry.params.get("prompt", "")).split())
    detail = " ".join(entry.files) or entry.video_url or entry.error or ""
    progress = "-" if entry.progress is None else f"{entry.progress}%"
    return [entry.id, entry.status, progress, when, prompt, detail]


# Above this many rows a rich table is slow to draw (~1 ms a row) and too long to read as one:
# kling list -n 10000 took 12 s. Plain aligned lines stream out at once instead.
MAX_TABLE_ROWS = 200
WIDE, WIDER = 90, 130  # terminal widths from which the time, then the saved path or URL, show


def _table_rows(env: Env) -> int:
    """How many tasks still get the table: those that fit on the screen, below its header and
    above the next prompt, and never more than MAX_TABLE_ROWS."""
    return min(MAX_TABLE_ROWS, _terminal_size(env)[1] - 2)


def _terminal_size(env: Env) -> tuple[int, int]:
    """(columns, lines) of stdout's terminal, COLUMNS and LINES first, as rich reads them."""
    import os
    from contextlib import suppress

    size = (80, 24)
    with suppress(AttributeError, ValueError, OSError):  # not a real terminal (a test's buffer)
        size = os.get_terminal_size(env.ui.stdout.fileno())
    columns, lines = (env.environ.get(name, "") for name in ("COLUMNS", "LINES"))
    return (
        int(columns) if columns.isdigit() else size[0] or 80,
        int(lines) if lines.isdigit() else size[1] or 24,
    )


def _aligned(env: Env, entries: list[Entry]) -> None:
    """The table's columns as plain lines, one per task, aligned on widths computed from the
    rows: ids stay whole; the prompt is cut to what the line has room for."""
    from rich.cells import cell_len, set_cell_size  # terminal cells: a CJK prompt is wide

    width = _terminal_size(env)[0]
    wide, wider = width >= WIDE, width >= WIDER
    ascii_only = env.ui.ascii_only

    def shown(text: str) -> str:  # what an ASCII-only terminal gets, as the table's stream does
        return text.encode("ascii", "replace").decode("ascii") if ascii_only else text

    head = ["task", "status", "progress"] + (["submitted"] if wide else [])
    rows: list[list[str]] = []
    prompts: list[str] = []
    details: list[str] = []
    for entry in entries:
        task_id, status, progress, when, prompt, detail = map(shown, _fields(entry))
        rows.append([task_id, status, progress] + ([when[:16].replace("T", " ")] if wide else []))
        prompts.append(prompt[:80])
        details.append(detail)
    widths = [max(cell_len(h), *(cell_len(r[i]) for r in rows)) for i, h in enumerate(head)]
    widths[1] = max(widths[1], 11)  # as the table's status column: room for "in_progress"
    room = width - sum(widths) - 2 * len(widths)
    if wider:
        room -= max(cell_len("saved / url"), *(cell_len(d) for d in details)) + 2
    prompt_width = min(max(cell_len("prompt"), *(cell_len(p) for p in prompts)), max(12, room))
    ellipsis = "..." if ascii_only else "\u2026"

    def line(cells: list[str], prompt: str, detail: str) -> str:
        if cell_len(prompt) > prompt_width:
            prompt = set_cell_size(prompt, prompt_width - len(ellipsis)) + ellipsis
        fixed = [  # progress is right-aligned, as in the table
            " " * (w - cell_len(c)) + c if i == 2 else c + " " * (w - cell_len(c))
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        text = "  ".join(
            [*fixed, set_cell_size(prompt, prompt_width)] + ([detail] if wider else [])
        )
        return text.rstrip()

    out = env.ui.stdout
    header = line(head, "prompt", "saved / url")
    out.write(
        (f"\x1b[1m{header}\x1b[0m" if env.ui.color else header) + "\n"
    )  # bold, as the table's
    chunk: list[str] = []  # a terminal's stream flushes every line: write a screenful at a time
    for cells, prompt, detail in zip(rows, prompts, details, strict=True):
        chunk.append(line(cells, prompt, detail) + "\n")
        if len(chunk) >= 100:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))
    out.flush()


def _table(env: Env, entries: list[Entry]) -> None:
    """A table that fits the terminal: ids stay whole (they are for copying); the time and the
    saved path or URL appear only where there is room; the prompt wraps in its cell."""
    from rich.cells import cell_len
    from rich.table import Table

    console = env.ui.rich_console(env.ui.stdout, terminal=False)
    ids = max(cell_len("task"), *(cell_len(entry.id) for entry in entries))
    if console.width < ids + 2 + 11 + 2 + 8 + 2 + 12:  # the columns below would cut the ids
        _narrow_table(console, entries, ids)
        return
    wide, wider = console.width >= WIDE, console.width >= WIDER
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=11)
    table.add_column("progress", no_wrap=True, justify="right")
    if wide:
        table.add_column("submitted", no_wrap=True)
    table.add_column("prompt", overflow="fold", min_width=12)
    if wider:
        table.add_column("saved / url", overflow="fold")
    for entry in entries:
        task_id, status, progress, when, prompt, detail = _fields(entry)
        row = [task_id, status, progress]
        if wide:
            row.append(when[:16].replace("T", " "))
        row.append(prompt[:80])
        if wider:
            row.append(detail)
        table.add_row(*row)
    console.print(table)


def _narrow_table(console: Any, entries: list[Entry], ids: int) -> None:
    """The table in a narrow terminal: the ids whole, then what fits of the status, the
    progress and the prompt (wrapped in its cell)."""
    from rich.cells import cell_len
    from rich.table import Table

    rows = [_fields(entry) for entry in entries]
    state = max([cell_len("status"), *(cell_len(row[1]) for row in rows)])
    progress = max([cell_len("progress"), *(cell_len(row[2]) for row in rows)])
    prompt = max([cell_len("prompt"), *(cell_len(row[4][:80]) for row in rows)])
    gap, widths = fit_columns(
        console.width - ids,
        [
            Column("status", state, state, state),
            Column("progress", progress, min(progress, 8), min(progress, 4)),  # or "100%"
            Column("prompt", prompt, min(prompt, 12), min(prompt, 12)),
        ],
    )
    table = Table(
        box=None, header_style="bold", pad_edge=False, collapse_padding=gap == 1, padding=(0, 1)
    )
    table.add_column("task", width=min(ids, console.width), no_wrap=True, overflow="ellipsis")
    for name, width in widths.items():
        wraps = name == "prompt"
        table.add_column(
            name,
            width=width,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            justify="right" if name == "progress" else "left",
        )
    for task_id, status, progress_text, _, prompt_text, _ in rows:
        cells = {"status": status, "progress": progress_text, "prompt": prompt_text[:80]}
        table.add_row(task_id, *(cells[name] for name in widths))
    console.print(table)


def command(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", metavar="N", help="Show at most N tasks.", min=1)
    ] = 20,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the tasks this machine submitted, newest first (from the local journal).

    \b
    Examples:
      kling list
      kling list --json | jq -r 'select(.state == "pending") | .id'
      kling wait $(kling list -q -n 3)
    """
    raise typer.Exit(run_list(env_of(ctx), ListOptions(limit, choose(json, quiet))))
