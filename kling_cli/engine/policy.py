"""When a task is polled next, and when it has stalled: the engine's rules for one task's
polls. Gaps of 1 s, 2 s, 4 s ... up to the service's advice for the status (or a fixed
--interval); --stall-timeout measured from the last change of status or progress heard."""

from __future__ import annotations

from ..api.tasks import ADVISED_INTERVAL, TaskView
from ..config import MIN_POLL_INTERVAL
from ..errors import Stalled
from .jobs import J, Job, Plan


def gap(plan: Plan[J], job: J) -> float:
    """1 s, 2 s, 4 s, ... until the service's advice for the task's status, which then
    holds; or the fixed interval."""
    if plan.interval is not None:
        return plan.interval
    advice = ADVISED_INTERVAL.get(job.view.spelling, ADVISED_INTERVAL["queued"])
    gap = min(job.interval, advice)
    job.interval = gap * 2
    return gap


def heard(job: Job, task: TaskView, now: float) -> None:
    """The stall clock: it starts when the task is first heard of in this run, and starts
    again whenever its status or progress changes."""
    seen = (job.view.status, job.view.progress)
    if job.since is None or (task.status, task.progress) != seen:
        job.since = now


def has_stalled(plan: Plan[J], job: J, now: float) -> bool:
    """--stall-timeout: judged on an answer just heard, never on an old one, so a poll
    that came late (every thread busy) cannot make a moving task look stalled."""
    limit = plan.stall_timeout
    return limit is not None and job.since is not None and now - job.since >= limit


def next_poll(plan: Plan[J], job: J, now: float) -> float:
    """After the gap; but no later than the stall deadline, so a stall is seen on time
    (and never sooner than a fixed --interval may poll)."""
    when = now + gap(plan, job)
    if plan.stall_timeout is not None and job.since is not None:
        deadline = job.since + plan.stall_timeout
        when = max(min(when, deadline), now + MIN_POLL_INTERVAL)
    return when


def stalled(task: TaskView, seconds: float) -> Stalled:
    """The task stood still: it lives on at the service (the command says how to go on)."""
    last = task.status + ("" if task.progress is None else f" {task.progress}%")
    return Stalled(
        f"task {task.id} stalled: no change in status or progress for {seconds:g} s (last: {last})",
        task_id=task.id,
    )
