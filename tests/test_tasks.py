"""Reading task JSON tolerantly: one view of a task, its state from one table of spellings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_cli.api.tasks import State, TaskView

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
