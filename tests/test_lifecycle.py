"""The lifecycle engine's schedule and policies, on a fake clock against a scripted client:
no sleeping, no sockets (the commands' tests cover those)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kling_cli.env import Env, FakeClock
from kling_cli.errors import APIError, ServiceUnavailable
from kling_cli.lifecycle import Engine, Job, Plan
from kling_cli.tasks import TaskView


class ScriptedClient:
    """get_task answers each id's statuses in turn (the last one repeats); errors raise."""

    def __init__(self, statuses: dict[str, list[str | Exception]], time: FakeClock):
        self.statuses = statuses
        self.time = time
        self.log: list[tuple[float, str]] = []
        self.url: str | None = "https://files.example/v.mp4"

    def get_task(self, task_id: str) -> TaskView:
        self.log.append((self.time.now(), task_id))
        queue = self.statuses[task_id]
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(status, Exception):
            raise status
        return TaskView.of({"id": task_id, "status": status, "video_url": self.url})

    def close(self) -> None:
        pass


def run(
    statuses: dict[str, list[str | Exception]],
    url: str | None = "https://v.example/a.mp4",
    **plan: object,
) -> tuple[list[Job], list]:
    time = FakeClock(start=0.0)
    env = Env.test(clock=time)
    client = ScriptedClient(statuses, time)
    client.url = url
    env._client = client  # type: ignore[assignment]  # a scripted stand-in for the HTTP client
    jobs = [Job(order, task_id) for order, task_id in enumerate(statuses)]
    engine: Engine[Job] = Engine(env, Plan[Job](**plan))  # type: ignore[arg-type]
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
    engine: Engine[Job] = Engine(env, Plan[Job](interval=2))
    engine.poll(job, now=False)
    engine.run()
    assert client.log == [(2, "a")]


@pytest.mark.parametrize("parallel", [1, 4])
def test_at_most_parallel_requests_and_every_poll_on_time(parallel: int) -> None:
    statuses: dict[str, list[str | Exception]] = {
        f"t{n}": ["queued"] * (n % 4) + ["completed"] for n in range(20)
    }
    jobs, log = run(statuses, parallel=parallel, interval=1)
    assert all(job.code == 0 for job in jobs)
    for task_id in statuses:
        times = [t for t, tid in log if tid == task_id]
        assert times == [float(n) for n in range(len(times))], task_id  # one per interval


def test_a_target_fetches_as_soon_as_a_task_completes(tmp_path: Path) -> None:
    """The engine hands a completed task to fetch at once (the download itself is in
    tests/test_download.py); a task without a URL is exit 6."""
    jobs, _ = run({"a": ["completed"]}, url=None, target=lambda job: tmp_path / "a.mp4")
    assert jobs[0].code == 6 and "no http(s) video URL" in str(jobs[0].error)
