"""kling download TASK_ID...: save the videos of completed tasks."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Annotated

import typer

from .. import download, progress
from ..engine.jobs import Job, Plan
from ..engine.run import run_tasks, save_to, saved_as
from ..engine.scheduler import Engine
from ..env import Env
from ..errors import TaskFailed, UsageError, WaitTimeout
from ..output import Format, choose
from .common import (
    ForceOpt,
    JsonOpt,
    ParallelOpt,
    QuietOpt,
    TaskIdsArg,
    check_where_submitted,
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
    check_where_submitted(env, opts.task_ids)
    if opts.output == download.STDOUT:
        return to_stdout(env, opts)
    if opts.output is not None:
        download.check_output(opts.output, opts.task_ids, opts.force, saved_as(env))
    jobs = jobs_for(env, opts.task_ids)
    target = save_to(env, opts.output)
    plan = Plan[Job](
        parallel=opts.parallel, force=opts.force, target=target, saved_as=saved_as(env)
    )
    return run_tasks(env, jobs, plan, Engine.fetch, opts.format, opts.output)


def to_stdout(env: Env, opts: DownloadOptions) -> int:
    """`-o -`: one task's video on stdout, as `curl -o -` and `gh ... -O -` do; nothing else
    goes there. Refused when stdout is a terminal (an mp4 would garble it)."""
    if len(opts.task_ids) != 1:
        raise UsageError(
            "-o - writes one video to stdout, but there are several tasks",
            hint="save them to a folder: -o videos/",
        )
    if opts.format is Format.JSON:
        raise UsageError("--json and -o - cannot be used together: the video goes to stdout")
    if env.ui.stdout_tty:
        raise UsageError(
            "-o - writes the video to stdout, which is a terminal",
            hint="redirect or pipe it: kling download ID -o - > video.mp4",
        )
    out = env.ui.binary_stdout()
    (task_id,) = opts.task_ids
    task = env.client.get_task(task_id)
    env.records.update(task)
    if task.failed:
        raise TaskFailed(task.failure_message(), task_id=task_id)
    if not task.final:
        raise WaitTimeout(
            f"task {task_id} is not final yet (still {task.status})",
            hint=f"wait for it with `kling wait {task_id}`, then run this again",
            task_id=task_id,
        )
    quiet = opts.format is Format.QUIET
    bar = progress.transfer_display(env.ui, f"downloading {task_id}", quiet, task_id=task_id)
    with closing(bar):
        seen = download.stream_video(env.client, task, out, on_bytes=bar.advance)
        bar.finish()
    if seen.raw is not task.raw:  # asked afresh for an expired URL
        env.records.update(seen)
    return 0


def command(
    ctx: typer.Context,
    task_ids: TaskIdsArg,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            rich_help_panel="Saving",
            metavar="PATH",
            help="Save the video here: a file, or a folder (named after the task id); "
            "- writes it to stdout (one task).",
            show_default=False,
        ),
    ] = None,
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
      kling download ID -o - | ffplay -     # the video on stdout
      kling download -q $(kling list -q --limit 5) -o videos/
    """
    opts = DownloadOptions(
        list(dict.fromkeys(task_ids)), output, force, choose(json, quiet), parallel
    )
    raise typer.Exit(run_download(env_of(ctx), opts))
