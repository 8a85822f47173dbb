"""kling download TASK_ID...: save the videos of completed tasks."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from .. import download, tasks, workflow
from ..env import Env
from ..errors import APIError
from ..output import Format, Output, choose
from .common import ForceOpt, JsonOpt, OutputOpt, QuietOpt, TaskIdsArg, env_of


@dataclass
class DownloadOptions:
    task_ids: list[str]
    output: str | None  # a string: a trailing slash means a folder
    force: bool
    format: Format


def run_download(env: Env, opts: DownloadOptions) -> int:
    if opts.output is not None:
        download.check_output(opts.output, opts.task_ids, opts.force)
    tracked = []
    for task_id in opts.task_ids:
        t = tasks.Tracked(task_id)
        try:
            t.view = env.client.get_task(task_id)
            env.record_update(t.view)
        except APIError as exc:
            if not exc.concerns_one_task:
                raise
            t.error = exc
        tracked.append(t)
    return workflow.finish(
        env,
        Output(env, opts.format),
        tracked,
        save=True,
        output=opts.output,
        force=opts.force,
        quiet=opts.format is Format.QUIET,
    )


def command(
    ctx: typer.Context,
    task_ids: TaskIdsArg,
    output: OutputOpt = None,
    force: ForceOpt = False,
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
        list(dict.fromkeys(task_ids)), output, force, choose(env_of(ctx), json, quiet)
    )
    raise typer.Exit(run_download(env_of(ctx), opts))
