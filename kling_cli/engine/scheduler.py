"""The engine: every task kling follows, from send, poll or fetch to done. Sends and downloads
run on `parallel` threads, polls on POLL_THREADS more, one request a thread. `generate` enters
one job at send, `wait` N jobs at poll, `download` N at fetch, `batch` a job per line wherever
its journal says it stood.

One policy for all: a task's own 400/404/410 ends that task; a poll that still fails after the
client's retries ends that task with its error (exit 5) and the others go on; a completed task's
video is fetched as soon as it is seen completed; a task whose status and progress stand still
for the stall timeout ends stalled (exit 7) and the others go on. Everything that changes a job
happens on the calling (main) thread; worker threads only talk HTTP. A Ctrl-C lands only while
the engine waits, so a request's outcome (a paid task's id) is settled whole or not taken.
"""

from __future__ import annotations

import copy
import heapq
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, Generic

from .. import download, interrupts, paths
from ..errors import KlingError, RequestFailed, SubmitUncertain, WaitTimeout
from . import policy
from .jobs import POLL_THREADS, J, Kind, Plan, Stage
from .sends import Sends
from .workers import Workers

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.tasks import TaskView
    from ..context import Ui
    from ..progress import Display
    from ..store.records import Records

# The longest the loop waits at once: a wait of --timeout 1e10 is longer than the OS can time
# (OverflowError); cut into hours, the loop just looks again.
MAX_IDLE_SECONDS = 3600.0
SETTLE_SENDS_SECONDS = 30.0  # after Ctrl-C, how long requests already sent may take to answer


class Engine(Generic[J]):
    """Runs a plan's jobs with the client, the records and the clock it is handed. Each kind
    of work has its own queue, so picking the next job costs the same for 10,000 jobs as for
    10: `to_fetch` and `to_send` in order, and `waiting`, the heap of due polls, holding
    exactly the jobs in stage WAITING."""

    def __init__(
        self,
        plan: Plan[J],
        *,
        client: Callable[[], Client],  # made on the first request
        records: Records,
        ui: Ui,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        display: Display,  # told of each change; of the bytes, on the thread that downloads
        on_done: Callable[[J], None],  # after the display
    ):
        self.plan = plan
        self.client = client
        self.records = records
        self.ui = ui
        self.clock = clock
        self.sleep = sleep
        self.display = display
        self.on_done = on_done
        self.to_send: deque[J] = deque()
        self.to_fetch: deque[J] = deque()
        self.waiting: list[tuple[float, int, J]] = []
        self._seq = 0  # ties in `waiting` go to the job scheduled first
        self.inflight: dict[Future[Any], tuple[Kind, J]] = {}
        self._finished: SimpleQueue[Future[Any]] = SimpleQueue()  # requests as they end
        self.sends = Sends(plan, records, ui, clock)
        # --timeout 0 is "look once": no deadline, each task as its first answer finds it.
        self.look_once = plan.timeout == 0
        self.deadline = clock() + plan.timeout if plan.timeout else None
        # The jobs entered and not done, in the order they entered: a done job is dropped,
        # so a batch of 100,000 lines holds only those in flight.
        self.live: dict[J, None] = {}
        self.entered = 0
        self.fed_all = plan.feed is None

    # --- entering jobs -------------------------------------------------------------------------

    def _track(self, job: J) -> None:
        if job not in self.live:
            self.live[job] = None
            self.entered += 1

    def send(self, job: J) -> None:
        self._track(job)
        job.stage = Stage.NEW
        self.to_send.append(job)

    def poll(self, job: J, now: bool = True) -> None:
        """Poll at once, or (`now=False`, a view just heard) after the first gap."""
        self._track(job)
        at = self.clock()
        self._poll_at(job, at if now else policy.next_poll(self.plan, job, at))

    def _poll_at(self, job: J, when: float) -> None:
        job.stage = Stage.WAITING
        self._seq += 1
        heapq.heappush(self.waiting, (when, self._seq, job))

    def fetch(self, job: J) -> None:
        """Download its video (a job whose view is not seen yet asks for it first)."""
        self._track(job)
        job.stage = Stage.FETCH
        self.to_fetch.append(job)

    def finish(self, job: J) -> None:
        if job not in self.live:
            self.entered += 1
        self.live.pop(job, None)
        job.stage = Stage.DONE
        self.display.done(job)
        self.on_done(job)

    # --- the loop ------------------------------------------------------------------------------

    def run(self, before: Callable[[Executor], None] | None = None) -> None:
        """Until every job is done. `before(pool)`: work that may be interrupted at will (batch's
        uploads). A Ctrl-C settles the sends in flight (their ids are recorded), then raises
        KeyboardInterrupt for the command to explain."""
        self._feed()
        pool = Workers(self.plan.parallel)
        pollers = Workers(POLL_THREADS, "kling-poll")
        interrupted = False
        with interrupts.held() as gate:
            try:
                if before is not None:
                    with gate.opened():
                        before(pool)
                self._loop(pool, pollers, gate)
            except KeyboardInterrupt:
                interrupted = True
                self._settle_sends()
                paths.remove_unfinished()  # what workers were writing when we stopped
                raise
            finally:
                pool.shutdown(wait=not interrupted)
                pollers.shutdown(wait=not interrupted)

    def pending(self) -> list[J]:
        """Jobs not done yet (after an interrupt: the ones to resume), in their order."""
        return sorted(self.live, key=lambda j: j.order)

    def _feed(self) -> None:
        if not self.fed_all and len(self.to_send) < self.plan.parallel:
            assert self.plan.feed is not None
            self.fed_all = not self.plan.feed()

    def _loop(self, pool: Executor, pollers: Executor, gate: interrupts.Gate) -> None:
        while True:
            gate.check()
            self._feed()
            now = self.clock()
            if self.deadline is not None and now >= self.deadline:
                self._time_out()
            for kind, job in self._mark_sends(self._take(now)):
                self._start(pool, kind, job)
            while self.waiting and self.waiting[0][0] <= now:
                self._start(pollers, Kind.POLL, heapq.heappop(self.waiting)[2])
            if not self.inflight and not (self.to_send or self.to_fetch or self.waiting):
                if self.fed_all:
                    return
                continue  # every job entered so far is done: enter more
            idle = self._idle_for(now)
            if not self.inflight:  # nothing will come back to wake us: sleep
                with gate.opened():
                    self.sleep(idle or 0.0)
                continue
            with gate.opened():
                done = self._finished_requests(idle)
            for future in done:
                kind, job = self.inflight.pop(future)
                self._settle(kind, job, future)

    def _finished_requests(self, timeout: float | None) -> list[Future[Any]]:
        """The requests that came back, waiting up to `timeout` for the first."""
        try:
            done = [self._finished.get(timeout=timeout)]
        except Empty:
            return []
        while not self._finished.empty():  # (only this thread takes from it)
            done.append(self._finished.get_nowait())
        return done

    def _idle_for(self, now: float) -> float | None:
        """How long to wait for a request before there is other work (None: until one ends)."""
        wakes = [self.waiting[0][0]] if self.waiting else []
        sending = sum(kind is not Kind.POLL for kind, _ in self.inflight.values())
        if self.to_send and sending < self.plan.parallel:
            wakes.append(self.sends.paused_until)
        if self.deadline is not None and self.deadline > now:
            wakes.append(self.deadline)
        return min(max(0.0, min(wakes) - now), MAX_IDLE_SECONDS) if wakes else None

    def _take(self, now: float) -> list[tuple[Kind, J]]:
        """The fetches and sends that can start now, fetches first: they share -p's threads.
        Once sending has stopped (see _mark_sends), the sends waiting end unsent."""
        works: list[tuple[Kind, J]] = []
        heavy = self.plan.parallel - sum(k is not Kind.POLL for k, _ in self.inflight.values())
        while True:
            if self.to_send and self.sends.unsendable is not None:
                self._not_sent_for(self.to_send.popleft(), self.sends.unsendable)
            elif self.to_fetch and heavy > 0:
                works.append((Kind.FETCH, self.to_fetch.popleft()))
                heavy -= 1
            elif self.to_send and now >= self.sends.paused_until and heavy > 0:
                works.append((Kind.SEND, self.to_send.popleft()))
                heavy -= 1
            else:
                return works

    def _mark_sends(self, works: list[tuple[Kind, J]]) -> list[tuple[Kind, J]]:
        """`works` with each send marked before its request leaves (Sends.mark); without its
        sends if they cannot be."""
        sends = [job for kind, job in works if kind is Kind.SEND]
        if not sends or (exc := self.sends.mark(sends)) is None:
            return works
        for job in sends:
            self.sends.unsent(job)
            self._not_sent_for(job, exc)
        return [(kind, job) for kind, job in works if kind is not Kind.SEND]

    def _start(self, pool: Executor, kind: Kind, job: J) -> None:
        future: Future[Any]
        if kind is Kind.SEND:
            assert job.body is not None, "a job that starts at send has a body"
            job.stage = Stage.SENDING
            future = pool.submit(self.client().submit, job.body, deadline=self.deadline)
        elif kind is Kind.POLL:
            job.stage = Stage.POLLING
            by_business_id = job.task_id is None and job.business_id is not None
            asked = str(job.business_id if by_business_id else job.task_id)
            future = pool.submit(
                self.client().get_task, asked, deadline=self.deadline, business_id=by_business_id
            )
        else:
            job.stage = Stage.DOWNLOADING
            target = self.plan.target(job) if self.plan.target is not None else None
            # Asked here, on the thread the journal lives on: saved by an earlier run?
            kept = (
                target is not None
                and target.exists()
                and self.plan.saved_as(str(job.task_id), target)
            )
            future = pool.submit(self._fetch_work, job, job.view, target, kept)
        self.inflight[future] = (kind, job)
        future.add_done_callback(self._finished.put)
        self.display.change(job)

    def _fetch_work(
        self, job: J, view: TaskView, target: Path | None, kept: bool = False
    ) -> tuple[Path | None, TaskView]:
        """On a worker thread: the task (when not seen yet) and, if it completed, its video."""
        if not view:
            view = self.client().get_task(str(job.task_id), deadline=self.deadline)
        if not view.completed or target is None:
            return None, view
        if kept:
            return target.resolve(), view  # saved by an earlier run: done, not fetched again

        def on_bytes(done: int, total: int | None) -> None:
            job.received, job.total = done, total
            self.display.transfer(job)

        return download.fetch_video(
            self.client(),
            view,
            target,
            force=self.plan.force,
            on_bytes=on_bytes,
            deadline=self.deadline,
        )

    def _settle(self, kind: Kind, job: J, future: Future[Any]) -> None:
        try:
            result = future.result()
        except KlingError as exc:
            self._failed(kind, job, exc)
        else:
            if kind is Kind.SEND:
                self._sent(job, result)
            elif kind is Kind.POLL:
                self._polled(job, result)
            else:
                self._fetched(job, *result)
        if not job.done:
            self.display.change(job)

    def _settle_sends(self) -> None:
        """After Ctrl-C: let requests already sent come back, so their ids are recorded."""
        sends = {f: job for f, (kind, job) in self.inflight.items() if kind is Kind.SEND}
        if not sends:
            return
        self.ui.note(
            "waiting for the answer to the generation request already sent, so that its task "
            "id is kept (Ctrl-C again to stop at once)"
        )
        done, _ = wait(sends, timeout=SETTLE_SENDS_SECONDS)
        for future in done:
            self.inflight.pop(future)
            job, lost = sends[future], future.exception()
            if isinstance(lost, SubmitUncertain):
                # Its answer lost: still a send in doubt, as one whose answer did not come in
                # time, for the command to say once that its task may exist.
                self.sends.in_doubt(job, lost.message)
                continue
            self._settle(Kind.SEND, job, future)

    # --- outcomes ------------------------------------------------------------------------------

    def _sent(self, job: J, task: TaskView) -> None:
        job.task_id = task.id
        policy.heard(job, task, self.clock())
        job.view = task
        self.sends.answered(job, task)
        if self.plan.follow and not (self.look_once and not task.final):
            self.poll(job, now=False)
        else:
            self.finish(job)  # not followed; or looked at once (the send's answer), as it stands

    def _polled(self, job: J, task: TaskView) -> None:
        if job.task_id is None:  # asked by its business id: found, it is known by its id now
            job.task_id = task.id
            self.records.found(str(job.business_id), task)
        # The journal is written when the status or the progress changes (`kling list`), and
        # with the final answer (its video URL or error), however the answers before it went.
        if task.final or (task.status, task.progress) != (job.view.status, job.view.progress):
            self.records.update(task)
        now = self.clock()
        policy.heard(job, task, now)
        job.view = task
        if task.completed and self.plan.target is not None:
            self.fetch(job)
        elif task.final:
            if task.completed and task.video_url is None:
                job.error = download.no_video_url(task)
            self.finish(job)
        elif self.look_once:
            self.finish(job)  # --timeout 0: as it stands (exit 7)
        elif policy.has_stalled(self.plan, job, now):
            job.error = policy.stalled(task, self.plan.stall_timeout or 0.0)
            self.finish(job)
        else:
            self._poll_at(job, policy.next_poll(self.plan, job, now))

    def _fetched(self, job: J, path: Path | None, task: TaskView) -> None:
        if task.raw is not job.view.raw:
            self.records.update(task)
        job.view = task
        if path is not None:
            job.files = [path]
            self.records.file(str(job.task_id), path)
            if self.plan.after_save is not None:
                self.plan.after_save(job, path)
        elif task.completed:
            job.error = download.no_video_url(task) if task.video_url is None else None
        self.finish(job)

    def _failed(self, kind: Kind, job: J, exc: KlingError) -> None:
        if kind is Kind.POLL and isinstance(exc, RequestFailed) and exc.out_of_time and job.view:
            self.finish(job)  # --timeout came: the task ends as it stands (exit 7)
            return
        if kind is Kind.SEND and self.sends.failed(job, exc):
            job.stage = Stage.NEW  # it goes again, first, once the pause is over
            self.to_send.appendleft(job)
            return
        exc.task_id = exc.task_id or job.task_id
        job.error = exc
        self.finish(job)

    # --- the schedule --------------------------------------------------------------------------

    def _not_sent_for(self, job: J, exc: KlingError) -> None:
        job.error = copy.copy(exc)  # the same kind of error (and exit code), for this job
        job.error.message = f"not sent: {exc.message}"
        self.finish(job)

    def _time_out(self) -> None:
        """Past --timeout: every job not done ends as it stands (a pending task is exit 7),
        those not fed yet too."""
        while True:
            while self.waiting:
                self.finish(heapq.heappop(self.waiting)[2])
            while self.to_send:
                job = self.to_send.popleft()
                job.error = WaitTimeout(f"#{job.order} was not sent in time")
                self.finish(job)
            entered = self.entered
            self._feed()
            if self.fed_all or self.entered == entered:
                return  # all of them, or the rest wait for jobs in flight to be printed
