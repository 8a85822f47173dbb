"""The lifecycle engine's schedule and policies, on a fake clock against a scripted client:
no sleeping, no sockets (the commands' tests cover those)."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from kling_cli.api.tasks import TaskView
from kling_cli.clock import FakeClock
from kling_cli.engine.jobs import POLL_THREADS, Job, Plan
from kling_cli.engine.run import engine_for, first_failure
from kling_cli.engine.scheduler import Engine
from kling_cli.env import Env
from kling_cli.errors import APIError, ServiceUnavailable
from kling_cli.progress import NullDisplay


class ScriptedClient:
    """get_task answers each id's statuses in turn (the last one repeats); errors raise.
    `in_progress:40` is status in_progress at 40%. Each answer takes `delay` seconds."""

    def __init__(self, statuses: dict[str, list[str | Exception]], time: FakeClock):
        self.statuses = statuses
        self.time = time
        self.log: list[tuple[float, str]] = []
        self.url: str | None = "https://files.example/v.mp4"
        self.delay = 0.0

    def get_task(
        self, task_id: str, deadline: float | None = None, business_id: bool = False
    ) -> TaskView:
        self.log.append((self.time.now(), task_id))
        self.time.advance(self.delay)
        queue = self.statuses[task_id]
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(status, Exception):
            raise status
        status, _, progress = status.partition(":")
        task = {"id": task_id, "status": status, "video_url": self.url}
        return TaskView.of({**task, "progress": int(progress)} if progress else task)

    def close(self) -> None:
        pass


def run(
    statuses: dict[str, list[str | Exception]],
    url: str | None = "https://v.example/a.mp4",
    delay: float = 0.0,
    **plan: object,
) -> tuple[list[Job], list]:
    time = FakeClock(start=0.0)
    env = Env.test(clock=time)
    client = ScriptedClient(statuses, time)
    client.url, client.delay = url, delay
    env._client = client  # type: ignore[assignment]  # a scripted stand-in for the HTTP client
    jobs = [Job(order, task_id) for order, task_id in enumerate(statuses)]
    engine: Engine[Job] = engine_for(env, Plan[Job](**plan), NullDisplay(), lambda job: None)
    for job in jobs:
        engine.poll(job)
    engine.run()
    return jobs, client.log


def test_polls_fast_then_as_advised() -> None:
    jobs, log = run({"a": ["queued"] * 5 + ["in_progress"] * 4 + ["completed"]}, parallel=1)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(log)]
    assert gaps[:4] == [1, 2, 4, 5]  # doubling, then the queued advice (5 s)
    assert max(gaps) == 10  # in_progress advice
    assert jobs[0].view.completed and jobs[0].code == 0


def test_fixed_interval_and_an_unknown_status_keeps_polling() -> None:
    jobs, log = run({"a": ["weird_state", "weird_state", "succeed"]}, interval=0.5)
    assert [t for t, _ in log] == [0, 0.5, 1.0]
    assert jobs[0].view.status == "succeed" and jobs[0].code == 0


def test_each_task_on_its_own_schedule() -> None:
    jobs, log = run({"a": ["queued", "completed"], "b": ["queued"] * 3 + ["cancelled"]}, interval=1)
    assert [j.code for j in jobs] == [0, 6]
    assert sum(1 for _, tid in log if tid == "a") == 2
    assert sum(1 for _, tid in log if tid == "b") == 4


def test_timeout_ends_what_is_not_final() -> None:
    jobs, log = run({"a": ["in_progress"]}, interval=2, timeout=7)
    assert jobs[0].done and not jobs[0].view.final and jobs[0].code == 7
    assert log[-1][0] <= 7


def test_a_task_of_its_own_error_ends_only_that_task() -> None:
    jobs, _ = run({"gone": [APIError(404, "task not found")], "ok": ["completed"]})
    assert jobs[0].code == 4 and jobs[1].code == 0


def test_service_trouble_ends_that_task_with_exit_5_and_the_others_go_on() -> None:
    down = ServiceUnavailable("could not reach the host")
    jobs, log = run({"a": ["queued", down], "b": ["queued", "queued", "completed"]}, interval=1)
    assert jobs[0].code == 5 and jobs[0].error is down and jobs[0].error.task_id == "a"
    assert jobs[1].code == 0
    assert sum(1 for _, tid in log if tid == "a") == 2  # the client's retries are the budget


def test_a_task_just_heard_from_is_not_asked_again_at_once() -> None:
    time = FakeClock(start=0.0)
    env = Env.test(clock=time)
    client = ScriptedClient({"a": ["completed"]}, time)
    env._client = client  # type: ignore[assignment]  # a scripted stand-in
    job = Job(0, "a", view=TaskView.of({"id": "a", "status": "queued"}))
    engine: Engine[Job] = engine_for(env, Plan[Job](interval=2), NullDisplay(), lambda job: None)
    engine.poll(job, now=False)
    engine.run()
    assert client.log == [(2, "a")]


@pytest.mark.parametrize("parallel", [1, 4])
def test_every_poll_on_time_whatever_the_parallelism(parallel: int) -> None:
    statuses: dict[str, list[str | Exception]] = {
        f"t{n}": ["queued"] * (n % 4) + ["completed"] for n in range(20)
    }
    jobs, log = run(statuses, parallel=parallel, interval=1)
    assert all(job.code == 0 for job in jobs)
    for task_id in statuses:
        times = [t for t, tid in log if tid == task_id]
        assert times == [float(n) for n in range(len(times))], task_id  # one per interval


class MeetingClient(ScriptedClient):
    """Each poll waits until `parties` polls are in flight together (10 s at most: a barrier
    that breaks fails the test), and the most ever in flight is kept."""

    def __init__(self, statuses: dict[str, list[str | Exception]], parties: int):
        super().__init__(statuses, FakeClock(start=0.0))
        self._barrier = threading.Barrier(parties, timeout=10)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.most = 0

    def get_task(
        self, task_id: str, deadline: float | None = None, business_id: bool = False
    ) -> TaskView:
        with self._lock:
            self._in_flight += 1
            self.most = max(self.most, self._in_flight)
        try:
            self._barrier.wait()
        finally:
            with self._lock:
                self._in_flight -= 1
        return super().get_task(task_id, deadline, business_id)


@pytest.mark.parametrize("parallel", [1, 4])
def test_polls_go_out_together_beyond_parallel(parallel: int) -> None:
    """Polls of a service far away go out together on their own threads, whatever -p (which
    bounds sends and downloads): the 8 due at once are all in flight at once."""
    limit = 8
    assert limit <= POLL_THREADS
    client = MeetingClient({f"t{n}": ["completed"] for n in range(8)}, parties=limit)
    client.delay = 0.05  # each answer 50 ms away
    env = Env.test(clock=client.time)
    env._client = client  # type: ignore[assignment]  # a scripted stand-in
    jobs = [Job(order, f"t{order}") for order in range(8)]
    engine: Engine[Job] = engine_for(
        env, Plan[Job](parallel=parallel), NullDisplay(), lambda job: None
    )
    for job in jobs:
        engine.poll(job)
    engine.run()
    assert all(job.code == 0 for job in jobs)
    assert client.most == limit


def test_a_target_fetches_as_soon_as_a_task_completes(tmp_path: Path) -> None:
    """The engine hands a completed task to fetch at once (the download itself is in
    tests/test_download.py); a task without a URL is exit 6."""
    jobs, _ = run({"a": ["completed"]}, url=None, target=lambda job: tmp_path / "a.mp4")
    assert jobs[0].code == 6 and "no http(s) video URL" in str(jobs[0].error)


# --- --stall-timeout: a task whose status and progress stand still -----------------------------


def test_a_task_standing_still_stalls() -> None:
    jobs, log = run(
        {"a": ["queued", "in_progress:10", "in_progress:99"]}, interval=1, stall_timeout=5
    )
    job = jobs[0]
    assert job.code == 7 and job.error is not None and job.error.kind == "stalled"
    assert job.error.message == (
        "task a stalled: no change in status or progress for 5 s (last: in_progress 99%)"
    )
    assert job.error.task_id == "a" and not job.view.final
    assert log[-1][0] == 7  # 99% first seen at 2 s, and 5 s later it still was


def test_a_change_of_progress_starts_the_stall_clock_again() -> None:
    climbing = ["in_progress:1"] * 4 + ["in_progress:2"] * 4 + ["completed"]
    jobs, log = run({"a": list(climbing)}, interval=1, stall_timeout=4)
    assert jobs[0].code == 0 and jobs[0].error is None and log[-1][0] == 8
    jobs, log = run({"a": list(climbing)}, interval=1, stall_timeout=3)  # the same, less patient
    assert jobs[0].code == 7 and jobs[0].error is not None and log[-1][0] == 3


def test_a_change_of_status_starts_the_stall_clock_again() -> None:
    statuses = ["queued"] * 4 + ["in_progress"] * 4 + ["succeed"]  # no progress at all
    jobs, _ = run({"a": statuses}, interval=1, stall_timeout=4)
    assert jobs[0].code == 0 and jobs[0].view.status == "succeed"


def test_without_a_stall_timeout_a_task_standing_still_waits_for_the_timeout() -> None:
    jobs, log = run({"a": ["in_progress:99"]}, interval=10, timeout=100)
    assert jobs[0].code == 7 and jobs[0].error is None  # timed out, not stalled
    assert len(log) == 10


def test_the_stall_deadline_brings_the_next_poll_forward() -> None:
    """Polls every 1, 2, 4 s ... but the answer that decides comes at the deadline, not later."""
    jobs, log = run({"a": ["in_progress:99"]}, stall_timeout=2.5)
    assert [t for t, _ in log] == [0, 1, 2.5] and jobs[0].code == 7


def test_a_tiny_stall_timeout_never_polls_in_a_tight_loop() -> None:
    moving = [f"in_progress:{n}" for n in range(10)] + ["completed"]
    jobs, log = run({"a": moving}, stall_timeout=0.001)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(log)]
    assert jobs[0].code == 0 and min(gaps) == pytest.approx(0.05)  # the --interval floor


def test_a_slow_service_is_not_a_stall() -> None:
    """Each answer takes longer than the stall timeout: it is the answers that count, and each
    one shows the task moving."""
    moving = [f"in_progress:{n}" for n in range(0, 100, 10)] + ["completed"]
    jobs, _ = run({"a": moving}, delay=10, interval=1, stall_timeout=5)
    assert jobs[0].code == 0 and jobs[0].error is None


def test_one_task_stalls_and_the_others_go_on() -> None:
    """batch's rule: the stalled line ends (exit 7), the rest complete; the run's code is that
    of the first line that did not complete."""
    jobs, log = run(
        {
            "a": ["in_progress:50"] * 3 + ["completed"],
            "b": ["in_progress:10", "in_progress:99"],
            "c": [f"in_progress:{n}" for n in range(20)] + ["completed"],
            "d": ["queued", "failed"],
        },
        interval=1,
        stall_timeout=4,
        parallel=4,
    )
    assert [job.code for job in jobs] == [0, 7, 0, 6]
    assert jobs[1].error is not None and jobs[1].error.kind == "stalled"
    assert max(t for t, tid in log if tid == "b") == 5  # 99% at 1 s, stalled at 5 s
    assert max(t for t, tid in log if tid == "c") == 20  # c went on long after
    assert first_failure(job.code for job in jobs) == 7
