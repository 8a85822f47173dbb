"""Progress displays: what a full screen shows (the terminal itself is in test_terminal.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from kling_cli.api import tasks
from kling_cli.engine.jobs import Job, Stage
from kling_cli.errors import APIError
from kling_cli.live import rows_that_fit, wait_table


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


def render(jobs: list[Job], width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(wait_table(jobs, width, "12s"))
    return [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]


LONG_IDS = [f"video_01M8RWYM3PA8RD6TS0WX4ANW{n:02d}" for n in range(4)]  # 32 columns each


def jobs_in_every_state() -> list[Job]:
    def seen(status: str, progress: int | None) -> tasks.TaskView:
        return tasks.TaskView.of({"id": "x", "status": status, "progress": progress})

    return [
        Job(1, LONG_IDS[0], view=seen("in_progress", 42), stage=Stage.WAITING),
        Job(2, LONG_IDS[1], view=seen("completed", 100), stage=Stage.DOWNLOADING,
            received=1_200_000, total=5_000_000),
        Job(3, LONG_IDS[2], view=seen("completed", 100), stage=Stage.DONE,
            files=[Path("/home/someone/videos/a-long-folder-name") / f"{LONG_IDS[2]}.mp4"]),
        Job(4, LONG_IDS[3], error=APIError(404, "task not found"), stage=Stage.DONE),
    ]  # fmt: skip


@pytest.mark.parametrize("width", [140, 80, 60, 50, 40])
def test_the_live_table_keeps_every_id_whole_in_a_narrow_terminal(width: int) -> None:
    lines = render(jobs_in_every_state(), width)
    assert len(lines) == 5  # a header and a line per task: nothing wraps
    assert all(len(line) <= width for line in lines)
    assert [line.split()[0] for line in lines[1:]] == LONG_IDS
    if width >= 50:  # room for the status whole, and the progress
        assert lines[1].split()[1:3] == ["in_progress", "42%"]
    if width >= 80:
        assert lines[0].split() == ["task", "status", "progress", "elapsed"]
    if width >= 140:  # a saved task shows its progress; its file is the result on stdout
        assert lines[3].split()[1:] == ["completed", "100%", "12s"]
    assert "not found" not in "".join(lines)  # the error is said below the table, once


@pytest.mark.parametrize("width", [100, 50, 40])
def test_the_batch_display_keeps_every_id_whole_too(width: int) -> None:
    from kling_cli.api.request import Request
    from kling_cli.batch.lines import Line
    from kling_cli.context import Ui
    from kling_cli.live import LiveBatch

    display = LiveBatch(Ui.test(environ={"COLUMNS": str(width)}), total=10)
    display.close()  # drawn below, by hand
    for job in jobs_in_every_state()[:2]:  # the ones in flight, as batch lines
        line = Line(
            order=job.order,
            task_id=job.task_id,
            view=job.view,
            stage=job.stage,
            key=f"k{job.order}",
            request=Request("a fox", "kling-v3-omni", "std", 5, "16:9"),
        )
        display.change(line)
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(display.render())
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]
    assert all(len(line) <= width for line in lines)
    rows = [line for line in lines if line.startswith("line ")]
    assert [row.split()[2] for row in rows] == LONG_IDS[:2]
    assert any(line.startswith("0/10 done") or " 0/10 done" in line for line in lines)
    assert "?" not in "\n".join(lines)  # no `ETA ?` before a line is done
