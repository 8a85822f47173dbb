"""Reading task JSON tolerantly, and the polling schedule (with a fake clock: no sleeping)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_cli import tasks
from kling_cli.errors import APIError, ServiceUnavailable
from kling_cli.tasks import State, TaskView

URL = "https://cdn.example/v.mp4"


@pytest.mark.parametrize(
    "task",
    [
        {"result": {"data": [{"url": URL}]}},
        {"result": {"data": [{"url": [URL, "https://cdn.example/other.mp4"]}]}},
        {"result": {"data": [{"url": ""}, {"url": URL}]}},
        {"url": URL},
        {"video_url": URL},
        {"result": {"url": URL}},
        {"result": {"videos": [{"url": URL}]}},
        {"result": {"data": [{"url": "ftp://x"}]}, "video_url": URL},
    ],
)
def test_video_url_found_in_every_documented_place(task: dict[str, Any]) -> None:
    assert TaskView.of(task).video_url == URL


@pytest.mark.parametrize(
    "task",
    [{}, {"result": []}, {"result": {"data": "x"}}, {"url": "/relative"}, {"result": None}, []],
)
def test_video_url_absent(task: Any) -> None:
    assert TaskView.of(task).video_url is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(
    st.dictionaries(
        st.sampled_from(["result", "url", "video_url", "status", "progress"]), json_values
    )
)
def test_task_readers_never_raise(task: dict[str, Any]) -> None:
    view = TaskView.of(task)
    url = view.video_url
    assert url is None or url.startswith(("http://", "https://"))
    assert view.progress is None or 0 <= view.progress <= 100
    assert isinstance(view.status, str) and isinstance(view.error_text, str)
    assert view.state in State and view.raw == task


@pytest.mark.parametrize(
    ("value", "expected"),
    [(40, 40), ("55", 55), ("70%", 70), (101, 100), (-3, 0), ("x", None), (True, None)],
)
def test_progress_tolerates_types(value: Any, expected: int | None) -> None:
    assert TaskView.of({"progress": value}).progress == expected


def test_error_text_object_or_string() -> None:
    assert TaskView.of({"error": {"code": "c1", "message": "bad"}}).error_text == "bad (c1)"
    assert TaskView.of({"error": "plain words"}).error_text == "plain words"


COMPLETED = ["completed", "succeed", "succeeded", "success", "Completed", " SUCCEED "]
FAILED = ["failed", "cancelled", "canceled", "expired", "error", "Cancelled"]
PENDING = ["queued", "submitted", "in_progress", "processing", "pending", "running", "weird", ""]


@pytest.mark.parametrize("status", COMPLETED + FAILED + PENDING)
def test_every_spelling_of_a_state_means_that_state(status: str) -> None:
    view = TaskView.of({"id": "t", "status": status})
    expected = (
        State.COMPLETED if status in COMPLETED else State.FAILED if status in FAILED
        else State.PENDING
    )  # fmt: skip
    assert view.state is expected
    assert view.final is (expected is not State.PENDING)
    assert view.raw["status"] == status  # --json keeps it as it came
    assert view.exit_code == {State.COMPLETED: 0, State.FAILED: 6, State.PENDING: 7}[expected]


def test_a_failure_names_its_spelling() -> None:
    cancelled = TaskView.of({"id": "t", "status": "cancelled", "error": "by the user"})
    assert cancelled.failure_message() == "task t failed (cancelled): by the user"
    failed = TaskView.of({"id": "t", "status": "failed"})
    assert failed.failure_message() == "task t failed: no reason given"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def scripted(statuses: dict[str, list[str]], fake: FakeTime, log: list[tuple[float, str]]):
    def poll(task_id: str) -> TaskView:
        log.append((fake.now, task_id))
        queue = statuses[task_id]
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        return TaskView.of({"id": task_id, "status": status})

    return poll


def test_wait_polls_fast_then_as_advised() -> None:
    fake, log = FakeTime(), []
    poll = scripted({"a": ["queued"] * 5 + ["in_progress"] * 4 + ["completed"]}, fake, log)
    done = tasks.wait_for(["a"], poll, clock=fake.clock, sleep=fake.sleep)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(log)]
    assert gaps[:4] == [1, 2, 4, 5]  # doubling, then the queued advice (5 s)
    assert max(gaps) == 10  # in_progress advice
    assert done[0].view.status == "completed"


def test_wait_fixed_interval_and_unknown_status_keeps_polling() -> None:
    fake, log = FakeTime(), []
    poll = scripted({"a": ["weird_state", "weird_state", "completed"]}, fake, log)
    tasks.wait_for(["a"], poll, interval=0.5, clock=fake.clock, sleep=fake.sleep)
    assert [t for t, _ in log] == [0, 0.5, 1.0]


def test_wait_many_tasks_each_polled_on_its_own_schedule() -> None:
    fake, log = FakeTime(), []
    poll = scripted({"a": ["queued", "completed"], "b": ["queued"] * 3 + ["failed"]}, fake, log)
    done = tasks.wait_for(["a", "b"], poll, interval=1, clock=fake.clock, sleep=fake.sleep)
    assert [t.view.status for t in done] == ["completed", "failed"]
    assert sum(1 for _, tid in log if tid == "a") == 2
    assert sum(1 for _, tid in log if tid == "b") == 4


def test_wait_timeout_returns_unfinished() -> None:
    fake, log = FakeTime(), []
    poll = scripted({"a": ["in_progress"]}, fake, log)
    done = tasks.wait_for(["a"], poll, interval=2, timeout=7, clock=fake.clock, sleep=fake.sleep)
    assert not done[0].done
    assert fake.now == 7


def test_wait_unknown_task_ends_only_that_task() -> None:
    fake = FakeTime()

    def poll(task_id: str) -> TaskView:
        if task_id == "gone":
            raise APIError(404, "task not found")
        return TaskView.of({"id": task_id, "status": "completed"})

    done = tasks.wait_for(["gone", "ok"], poll, clock=fake.clock, sleep=fake.sleep)
    assert done[0].error is not None and done[1].view.completed


def test_wait_unreachable_service_propagates() -> None:
    fake = FakeTime()

    def poll(task_id: str) -> TaskView:
        raise ServiceUnavailable("down")

    with pytest.raises(ServiceUnavailable):
        tasks.wait_for(["a"], poll, clock=fake.clock, sleep=fake.sleep)


def test_wait_does_not_repoll_a_task_just_heard_from() -> None:
    fake, log = FakeTime(), []
    poll = scripted({"a": ["completed"]}, fake, log)
    known = {"a": TaskView.of({"id": "a", "status": "queued"})}
    tasks.wait_for(["a"], poll, interval=2, known=known, clock=fake.clock, sleep=fake.sleep)
    assert log == [(2, "a")]
