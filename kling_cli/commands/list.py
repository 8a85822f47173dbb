"""kling list: the tasks this machine submitted (the local journal), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ..env import Env
from ..errors import APIError, KlingError
from ..output import Column, Format, Output, choose, counted, fit_columns
from ..text import printable
from .common import JsonOpt, QuietOpt, env_of

if TYPE_CHECKING:
    from ..api.tasks import TaskView
    from ..store.journal import Entry

TERMINAL_LIMIT = 20  # rows on a terminal unless -n says; piped (a script, a CSV): every row
REFRESH_THREADS = 8


@dataclass
class ListOptions:
    limit: int | None  # None: TERMINAL_LIMIT on a terminal, every row elsewhere
    format: Format
    refresh: bool = False


def run_list(env: Env, opts: ListOptions) -> int:
    out = Output(env.ui, opts.format)
    limit = opts.limit
    if limit is None and env.ui.stdout_tty:
        limit = TERMINAL_LIMIT
    entries = env.journal.entries(limit)
    failure = refresh(env, entries) if opts.refresh else None
    if opts.format is Format.JSON:
        for entry in entries:
            out.json(entry.as_json())
    elif opts.format is Format.QUIET:
        for entry in entries:
            out.value(entry.shown_id)
    elif env.ui.stdout_tty:
        if entries:
            _aligned(env, entries)
        else:
            env.ui.note("no tasks yet: submit one with `kling generate`")
    else:
        for entry in entries:
            out.row(*_fields(entry))
    if limit is not None and len(entries) == limit:
        total = env.journal.count()
        if total > limit:  # never cut silently: a script would take the rows for all there are
            env.ui.note(f"{counted(total - limit, 'more task')} not shown: kling list -n {total}")
    if failure is not None:
        env.ui.error(failure)
        return failure.exit_code
    return 0


def refresh(env: Env, entries: list[Entry]) -> KlingError | None:
    """Ask the service, in parallel, about the rows that are not final, record what it says,
    and put it in `entries` in place. A task the service refuses alone (an unknown id) is
    warned of; any other failure (the service unreachable, the key refused) is returned, the
    rows kept as the journal had them. Rows submitted to another base URL are left alone: this
    run's service does not know them."""
    from ..api.urls import same_service
    from ..engine.workers import Workers
    from ..store.journal import ATTEMPT_PREFIX, UNCERTAIN

    stale = [
        i for i, entry in enumerate(entries)
        if not entry.view.final and entry.status != UNCERTAIN
        and not entry.id.startswith(ATTEMPT_PREFIX)
    ]  # fmt: skip
    if not stale:
        return None
    elsewhere = [i for i in stale if not same_service(entries[i].base_url, env.base_url)]
    if elsewhere:
        env.ui.note(
            f"{counted(len(elsewhere), 'task')} submitted to another base URL not refreshed "
            f"(this run's is {env.base_url}): {' '.join(entries[i].id for i in elsewhere)}"
        )
    todo = [i for i in stale if i not in elsewhere]
    if not todo:
        return None
    client = env.client
    pool = Workers(min(REFRESH_THREADS, len(todo)), "kling-refresh")  # daemons: Ctrl-C is quick
    heard: list[tuple[int, TaskView]] = []
    failed: list[KlingError] = []
    try:
        futures = [(i, pool.submit(client.get_task, entries[i].id)) for i in todo]
        for i, future in futures:
            try:
                heard.append((i, future.result()))
            except APIError as exc:
                if exc.concerns_one_task:
                    env.ui.warn(f"could not refresh {entries[i].id}: {exc.message}")
                else:
                    failed.append(exc)
            except KlingError as exc:
                failed.append(exc)
    finally:
        pool.shutdown(wait=False)
    for i, view in heard:  # written once every answer is in: no lock held while asking
        env.records.update(view)
        entries[i] = _heard(entries[i], view)
    if not failed:
        return None
    first = failed[0]
    first.message = f"{counted(len(failed), 'task')} not refreshed: {first.message}"
    first.task_id = None
    return first


def _heard(entry: Entry, view: TaskView) -> Entry:
    """The row as the journal has it once `view` is recorded (Journal.update)."""
    return entry._replace(
        status=view.status,
        progress=view.progress if view.progress is not None else entry.progress,
        video_url=view.video_url or entry.video_url,
        error=view.error_text if view.failed else None,
        task=dict(view.raw),
    )


def _fields(entry: Entry) -> list[str]:
    """ID, STATUS, PROGRESS, SUBMITTED, PROMPT, DETAIL: each printable, on one line."""
    when = datetime.fromtimestamp(entry.submitted_at).astimezone().isoformat(timespec="seconds")
    prompt = " ".join(str(entry.params.get("prompt", "")).split())
    detail = " ".join(entry.files) or entry.video_url or entry.error or ""
    progress = "-" if entry.progress is None else f"{entry.progress}%"
    return [printable(f) for f in (entry.shown_id, entry.status, progress, when, prompt, detail)]


WIDE, WIDER = 90, 130  # terminal widths from which the time, then the saved path or URL, show


def _terminal_width(env: Env) -> int:
    """The width of stdout's terminal, COLUMNS first, as rich reads it."""
    import os
    from contextlib import suppress

    width = 80
    with suppress(AttributeError, ValueError, OSError):  # not a real terminal (a test's buffer)
        width = os.get_terminal_size(env.ui.stdout.fileno()).columns or 80
    columns = env.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else width


def _aligned(env: Env, entries: list[Entry]) -> None:
    """A line per task, its columns aligned, each line within the terminal's width: the ids
    stay whole (they are for copying); the time and the saved path or URL show where there is
    room; the prompt is cut to what is left; in a narrow terminal the progress, then the
    status give way. Lines, not a table: thousands of them print at once."""
    from rich.cells import cell_len, set_cell_size  # terminal cells: a CJK prompt is wide

    width = _terminal_width(env)
    ascii_only = env.ui.ascii_only

    def shown(text: str) -> str:  # what an ASCII-only terminal gets
        return text.encode("ascii", "replace").decode("ascii") if ascii_only else text

    rows = [list(map(shown, _fields(entry))) for entry in entries]
    rows = [[r[0], r[1], r[2], r[3][:16].replace("T", " "), r[4][:80], r[5]] for r in rows]
    names = ["task", "status", "progress", "submitted", "prompt", "saved / url"]
    natural = [max(cell_len(names[i]), *(cell_len(r[i]) for r in rows)) for i in range(6)]
    natural[1] = max(natural[1], 11)  # room for "in_progress", as the live table has
    extras = ([3] if width >= WIDE else []) + ([5] if width >= WIDER else [])
    fixed = natural[0] + sum(natural[i] + 2 for i in (1, 2, *extras))
    if width - fixed >= 2 + 12:  # room for all, the prompt cut to the rest (at most its own)
        columns = [0, 1, 2, *(i for i in extras if i == 3), 4, *(i for i in extras if i == 5)]
        widths = {i: natural[i] for i in columns}
        widths[4] = min(natural[4], width - fixed - 2 - (natural[5] + 2 if 5 in extras else 0))
        if 5 in extras:
            widths[4] = max(widths[4], cell_len(names[4]))
        gap = 2
    else:  # narrow: the ids whole, then what fits of the status, the progress and the prompt
        gap, fit = fit_columns(
            width - natural[0],
            [
                Column("1", natural[1], natural[1], natural[1]),
                Column("2", natural[2], min(natural[2], 8), min(natural[2], 4)),
                Column("4", natural[4], min(natural[4], 12), min(natural[4], 12)),
            ],
        )
        widths = {0: natural[0], **{int(k): v for k, v in fit.items()}}
        columns = list(widths)
    ellipsis = "..." if ascii_only else "\u2026"

    def cell(text: str, size: int, right: bool = False) -> str:
        if cell_len(text) > size:
            text = set_cell_size(text, max(0, size - len(ellipsis))) + ellipsis
        pad = " " * (size - cell_len(text))
        return pad + text if right else text + pad

    def line(cells: list[str]) -> str:
        return (" " * gap).join(cell(cells[i], widths[i], right=i == 2) for i in columns).rstrip()

    out = env.ui.stdout
    header = line(names)
    out.write((f"\x1b[1m{header}\x1b[0m" if env.ui.color else header) + "\n")  # bold
    for start in range(0, len(rows), 100):  # a terminal's stream flushes every line
        out.write("".join(line(row) + "\n" for row in rows[start : start + 100]))
    out.flush()


def command(
    ctx: typer.Context,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            metavar="N",
            help=f"Show at most N tasks [default: {TERMINAL_LIMIT} on a terminal, all when piped].",
            min=1,
            show_default=False,
        ),
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Ask the service about the tasks shown that are not final, and record what "
            "it says.",
            show_default=False,
        ),
    ] = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the tasks this machine submitted, newest first (from the local journal).

    \b
    Examples:
      kling list
      kling list --refresh -n 5       # what the service says now of the 5 newest
      kling list --json | jq -r 'select(.state == "pending") | .id'
      kling wait $(kling list -q -n 3)
    """
    opts = ListOptions(limit, choose(json, quiet), refresh)
    raise typer.Exit(run_list(env_of(ctx), opts))
