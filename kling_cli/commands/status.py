"""kling status TASK_ID...: query tasks once."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from ..env import Env
from ..errors import APIError, ExitCode, first_failure
from ..output import Format, Output, choose
from .common import JsonOpt, QuietOpt, TaskIdsArg, check_where_submitted, env_of, jobs_for


@dataclass
class StatusOptions:
    task_ids: list[str]
    format: Format


def run_status(env: Env, opts: StatusOptions) -> int:
    check_where_submitted(env, opts.task_ids)
    out = Output(env.ui, opts.format)
    codes: list[int] = []
    for job in jobs_for(env, opts.task_ids):
        by_business_id = job.task_id is None
        asked = str(job.business_id if by_business_id else job.task_id)
        try:
            task = env.client.get_task(asked, business_id=by_business_id)
        except APIError as exc:
            if not exc.concerns_one_task:
                raise
            env.ui.error(exc)
            codes.append(exc.exit_code)
            continue
        if by_business_id:  # the uncertain send made this task: its row is the task's now
            env.records.found(asked, task)
        env.records.update(task)
        out.task(task, quiet_value=[task.status])
        codes.append(ExitCode.TASK_FAILED if task.failed else ExitCode.OK)
    return first_failure(codes)


def command(
    ctx: typer.Context, task_ids: TaskIdsArg, json: JsonOpt = False, quiet: QuietOpt = False
) -> None:
    """Query tasks once and print where each stands.

    \b
    Examples:
      kling status video_01J9HA7JPQ9A0Z6JZ3V8M9W6PZ
      kling status -q $(kling list -q --limit 3)
      kling status --json ID | jq -r .status
    """
    code = run_status(env_of(ctx), StatusOptions(task_ids, choose(json, quiet)))
    raise typer.Exit(code)
