"""Progress displays: what a full screen shows (the terminal itself is in test_terminal.py)."""

from __future__ import annotations

from kling_cli import tasks
from kling_cli.lifecycle import Job, Stage
from kling_cli.live import rows_that_fit


def test_a_full_screen_shows_the_running_tasks_first_in_their_order() -> None:
    rows = [
        Job(
            n,
            f"t{n}",
            view=tasks.TaskView.of({"id": f"t{n}", "status": "completed" if n % 3 else "queued"}),
            stage=Stage.DONE if n % 3 else Stage.WAITING,
        )
        for n in range(10)
    ]  # t0, t3, t6 and t9 are still queued
    assert rows_that_fit(rows, 20) == rows
    assert [t.task_id for t in rows_that_fit(rows, 3)] == ["t0", "t3", "t6"]
    assert [t.task_id for t in rows_that_fit(rows, 6)] == ["t0", "t1", "t2", "t3", "t6", "t9"]
