"""When a task is polled next, and when it has stalled: the engine's rules for one task's
polls. Gaps of 1 s, 2 s, 4 s ... up to the service's advice for the status (or a fixed
--interval); --stall-timeout measured from the last change of status or progress heard.
And how polls due together are made: several in one call on a poll thread while the service
answers fast (`chunks`, `poll_each`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from .config import MIN_POLL_INTERVAL
from .errors import KlingError, Stalled
from .jobs import J, Job, Plan
from .tasks import ADVISED_INTERVAL, TaskView

# A call on a poll thread makes as many polls, one after another, as take about CHUNK_SECONDS
# by the answers measured so far (at most CHUNK_MAX): a thread hand-off for each poll cost more
# CPU than a poll of a fast service (wait on 200 tasks: 0.30 -> 0.23 s). 50 ms away, each poll
# is a call of its own, as before. An answer slower than that ends the call, and the polls
# left are taken again at once: a slow answer holds up no other poll.
CHUNK_SECONDS = 0.01
CHUNK_MAX = 16


class Poller(Protocol):
    def get_task(self, task_id: str) -> TaskView: ...


def chunks(jobs: list[J], seconds_a_poll: float | None) -> list[list[J]]:
    """`jobs`, due now, in calls of a size that answers of `seconds_a_poll` allow (None: not
    measured yet, one a call)."""
    size = 1
    if seconds_a_poll is not None:
        size = max(1, min(CHUNK_MAX, int(CHUNK_SECONDS / max(seconds_a_poll, 1e-6))))
    return [jobs[n : n + size] for n in range(0, len(jobs), size)]


def poll_each(
    client: Poller, task_ids: list[str], clock: Callable[[], float] = time.monotonic
) -> tuple[list[TaskView | KlingError], float]:
    """On a poll thread: the tasks in turn, until an answer is slow (those after it are not
    polled); each answer or the task's error, and the seconds an answer took on average."""
    answers: list[TaskView | KlingError] = []
    started = began = clock()
    for task_id in task_ids:
        try:
            answers.append(client.get_task(task_id))
        except KlingError as exc:
            answers.append(exc)
        now = clock()
        if now - began > CHUNK_SECONDS:
            break
        began = now
    return answers, (now - started) / len(answers)


def gap(plan: Plan[J], job: J) -> float:
    """1 s, 2 s, 4 s, ... until the service's advice for the task's status, which then
    holds; or the fixed interval."""
    if plan.interval is not None:
        return plan.interval
    advice = ADVISED_INTERVAL.get(job.view.status, ADVISED_INTERVAL["queued"])
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
    that came late (every slot busy) cannot make a moving task look stalled."""
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
