"""kling list: the tasks this machine submitted (the local journal), newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ..env import Env
from ..output import Format, Output, choose
from .common import JsonOpt, QuietOpt, env_of

if TYPE_CHECKING:
    from ..journal import Entry


@dataclass
class ListOptions:
    limit: int | None
    format: Format


def run_list(env: Env, opts: ListOptions) -> int:
    out = Output(env, opts.format)
    entries = env.journal.entries(opts.limit)
    if opts.format is Format.JSON:
        for entry in entries:
            out.json(entry.as_json())
    elif opts.format is Format.QUIET:
        for entry in entries:
            out.value(entry.id)
    elif env.stdout_tty:
        if entries:
            _table(env, entries)
        else:
            env.note("no tasks yet: submit one with `kling generate`")
    else:
        for entry in entries:
            out.value("\t".join(_fields(entry)))
    return 0


def _fields(entry: Entry) -> list[str]:
    when = datetime.fromtimestamp(entry.submitted_at).astimezone().isoformat(timespec="seconds")
    prompt = " ".join(str(entry.params.get("prompt", "")).split())
    detail = " ".join(entry.files) or entry.video_url or entry.error or ""
    progress = "-" if entry.progress is None else f"{entry.progress}%"
    return [entry.id, entry.status, progress, when, prompt, detail]


def _table(env: Env, entries: list[Entry]) -> None:
    """A table that fits the terminal: ids stay whole (they are for copying); the time and the
    saved path or URL appear only where there is room; the prompt wraps in its cell."""
    from rich.table import Table

    console = env.rich_console(env.stdout, terminal=False)
    wide, wider = console.width >= 90, console.width >= 130
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
    raise typer.Exit(run_list(env_of(ctx), ListOptions(limit, choose(env_of(ctx), json, quiet))))
