"""kling download TASK_ID...: save the videos of completed tasks."""

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
    JsonOpt,
    OutputOpt,
    ParallelOpt,
    QuietOpt,
    TaskIdsArg,
    env_of,
    jobs_for,
)


@dataclass
class DownloadOptions:
    task_ids: list[str]
    output: str | None  # a string: a trailing slash means a folder
    force: bool
    format: Format
    parallel: int = 4


def run_download(env: Env, opts: DownloadOptions) -> int:
    if opts.output is not None:
        download.check_output(opts.output, opts.task_ids, opts.force, saved_as(env))
    jobs = jobs_for(env, opts.task_ids)
    target = save_to(env, opts.output)
    plan = Plan[Job](
        parallel=opts.parallel, force=opts.force, target=target, saved_as=saved_as(env)
    )
    return run_tasks(env, jobs, plan, Engine.fetch, opts.format, opts.output)


def command(
    ctx: typer.Context,
    task_ids: TaskIdsArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
    parallel: ParallelOpt = 4,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Save the videos of completed tasks (to output_dir, or here, named after the task id).

    \b
    Examples:
      kling download ID
      kling download ID -o cat.mp4 --force
      kling download -q $(kling list -q --limit 5) -o videos/
    """
    opts = DownloadOptions(
        list(dict.fromkeys(task_ids)), output, force, choose(json, quiet), parallel
    )
    raise typer.Exit(run_download(env_of(ctx), opts))
