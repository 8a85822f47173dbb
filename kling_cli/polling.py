"""When a task is polled next, and when it has stalled: the engine's rules for one task's
polls. Gaps of 1 s, 2 s, 4 s ... up to the service's advice for the status (or a fixed
--interval); --stall-timeout measured from the last change of status or progress heard.
And how polls due together are made: several in one call on a poll thread while the service
answers fast (`chunks`, `poll_each`)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, Generic, Protocol

from .config import MIN_POLL_INTERVAL
from .errors import KlingError, Stalled
from .jobs import J, Job, Plan, Stage
from .tasks import ADVISED_INTERVAL, TaskView

# A call on a poll thread makes as many polls, one after another, as take about CHUNK_SECONDS
# by the answers measured so far (at most CHUNK_MAX): a thread hand-off for each poll cost more
# CPU than a poll of a fast service (wait on 200 tasks: 0.30 -> 0.23 s). 50 ms away, each poll
# is a call of its own, as before. An answer slower than that ends the call, and the polls
# left are taken again at once: a slow answer holds up no other poll.
CHUNK_SECONDS = 0.01
CHUNK_MAX = 16

Answer = TaskView | KlingError  # a poll's: the task, or why there is none


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
) -> tuple[list[Answer], float]:
    """On a poll thread: the tasks in turn, until an answer is slow (those after it are not
    polled); each answer or the task's error, and the seconds an answer took on average."""
    answers: list[Answer] = []
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


class Polls(Generic[J]):
    """The engine's polls: the jobs waiting for theirs, in a heap by when (the next one due
    costs the same for 10,000 jobs as for 10: exactly the jobs in stage WAITING), and the
    calls in flight on the poll threads, at most `limit` polls in all."""

    def __init__(
        self,
        limit: int,
        on_start: Callable[[J], None],
        finished: Callable[[Future[Any]], object],
    ):
        self.limit = limit
        self.on_start = on_start  # a job's poll begins
        self.finished = finished  # a call ended
        self.waiting: list[tuple[float, int, J]] = []
        self.calls: dict[Future[Any], list[J]] = {}
        self.in_flight = 0  # the jobs in `calls`
        self.seconds_a_poll: float | None = None  # as measured: a moving average
        self._seq = 0  # ties go to the job scheduled first

    def at(self, job: J, when: float) -> None:
        job.stage = Stage.WAITING
        self._seq += 1
        heapq.heappush(self.waiting, (when, self._seq, job))

    def next_due(self) -> float | None:
        """When the next poll is due, if there is room for it in flight."""
        if self.waiting and self.in_flight < self.limit:
            return self.waiting[0][0]
        return None

    def take_due(self, now: float) -> list[J]:
        """The jobs due by `now`, as many as there is room for in flight."""
        due: list[J] = []
        while self.waiting and self.waiting[0][0] <= now and self.in_flight + len(due) < self.limit:
            due.append(heapq.heappop(self.waiting)[2])
        return due

    def drain(self) -> Iterator[J]:
        """Every job still waiting (out of the heap as it goes)."""
        while self.waiting:
            yield heapq.heappop(self.waiting)[2]

    def start(
        self,
        due: list[J],
        pollers: Executor,
        client: Poller,
        clock: Callable[[], float],
    ) -> None:
        """Polls of `due` in calls on `pollers` (see `chunks`)."""
        for calls in chunks(due, self.seconds_a_poll):
            for job in calls:
                job.stage = Stage.POLLING
                self.on_start(job)
            self.in_flight += len(calls)
            future = pollers.submit(poll_each, client, [str(job.task_id) for job in calls], clock)
            self.calls[future] = calls
            future.add_done_callback(self.finished)

    def settle(self, future: Future[Any], now: float) -> list[tuple[J, Answer]]:
        """A call that ended: each job polled and its answer. The jobs it did not poll
        (behind a slow answer) are due again at once."""
        calls = self.calls.pop(future)
        self.in_flight -= len(calls)
        answers, seconds = future.result()
        average = self.seconds_a_poll
        self.seconds_a_poll = seconds if average is None else 0.8 * average + 0.2 * seconds
        for job in calls[len(answers) :]:
            self.at(job, now)
        return list(zip(calls, answers, strict=False))
