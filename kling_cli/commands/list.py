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
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("task", "status", "progress", "submitted", "prompt", "saved / url"):
        table.add_column(
            name, overflow="fold" if name == "task" else "ellipsis", no_wrap=name != "task"
        )
    for entry in entries:
        fields = _fields(entry)
        fields[3] = fields[3][:16].replace("T", " ")
        fields[4] = fields[4][:40]
        table.add_row(*fields)
    env.rich_console(env.stdout, terminal=False).print(table)


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
      kling list --json | jq -r 'select(.status=="failed") | .id'
      kling wait $(kling list -q -n 3)
    """
    raise typer.Exit(run_list(env_of(ctx), ListOptions(limit, choose(env_of(ctx), json, quiet))))
