"""kling wait TASK_ID...: poll until every task is final, with live progress."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from .. import download, workflow
from ..env import Env
from ..output import Format, Output, choose
from .common import (
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    TaskIdsArg,
    TimeoutOpt,
    env_of,
    setting_or,
)


@dataclass
class WaitOptions:
    task_ids: list[str]
    output: str | None  # a string: a trailing slash means a folder
    force: bool
    timeout: float | None
    interval: float | None
    format: Format


def run_wait(env: Env, opts: WaitOptions) -> int:
    quiet = opts.format is Format.QUIET
    if opts.output is not None:  # fail before polling, not after minutes of waiting
        download.check_output(opts.output, opts.task_ids, opts.force)
    tracked = workflow.wait(
        env,
        opts.task_ids,
        interval=setting_or(env, opts.interval, "poll_interval"),
        timeout=setting_or(env, opts.timeout, "timeout"),
        quiet=quiet,
        output=opts.output,
    )
    return workflow.finish(
        env,
        Output(env, opts.format),
        tracked,
        save=opts.output is not None,
        output=opts.output,
        force=opts.force,
        quiet=quiet,
    )


def command(
    ctx: typer.Context,
    task_ids: TaskIdsArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Poll tasks until each is final, showing live progress on stderr.

    \b
    Examples:
      kling wait ID
      kling wait ID1 ID2 -o videos/ --timeout 600
      kling wait -q ID            # prints the video URL
    """
    opts = WaitOptions(
        list(dict.fromkeys(task_ids)),
        output,
        force,
        timeout,
        interval,
        choose(env_of(ctx), json, quiet),
    )
    raise typer.Exit(run_wait(env_of(ctx), opts))
