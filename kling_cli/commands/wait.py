"""kling wait TASK_ID...: poll until every task is final, with live progress."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from .. import download
from ..engine.jobs import Job, Plan
from ..engine.run import run_tasks, save_to, saved_as
from ..engine.scheduler import Engine
from ..env import Env
from ..output import Format, choose
from .common import (
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    ParallelOpt,
    QuietOpt,
    StallTimeoutOpt,
    TaskIdsArg,
    TimeoutOpt,
    check_where_submitted,
    env_of,
    jobs_for,
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
    parallel: int = 4
    stall_timeout: float | None = None


def run_wait(env: Env, opts: WaitOptions) -> int:
    check_where_submitted(env, opts.task_ids)
    if opts.output is not None:  # fail before polling, not after minutes of waiting
        download.check_output(opts.output, opts.task_ids, opts.force, saved_as(env))
    jobs = jobs_for(env, opts.task_ids)
    plan = Plan[Job](
        parallel=opts.parallel,
        interval=setting_or(env, opts.interval, "poll_interval"),
        timeout=setting_or(env, opts.timeout, "timeout"),
        stall_timeout=setting_or(env, opts.stall_timeout, "stall_timeout"),
        force=opts.force,
        target=save_to(env, opts.output) if opts.output is not None else None,
        saved_as=saved_as(env),
    )
    return run_tasks(env, jobs, plan, Engine.poll, opts.format, opts.output)


def command(
    ctx: typer.Context,
    task_ids: TaskIdsArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    timeout: TimeoutOpt = None,
    stall_timeout: StallTimeoutOpt = None,
    interval: IntervalOpt = None,
    parallel: ParallelOpt = 4,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Poll tasks until each is final, showing live progress on stderr.

    \b
    Examples:
      kling wait ID
      kling wait ID1 ID2 -o videos/ --timeout 600    # each saved as soon as it completes
      kling wait -q ID            # prints the video URL
      kling wait ID --stall-timeout 900              # exit 7 if it stands still 15 min
    """
    opts = WaitOptions(
        list(dict.fromkeys(task_ids)),
        output,
        force,
        timeout,
        interval,
        choose(json, quiet),
        parallel,
        stall_timeout,
    )
    raise typer.Exit(run_wait(env_of(ctx), opts))
