"""kling list as people use it (issue "Used as people use it", item 7): the progress kling saw
is in the journal, `--refresh` asks the service about the rows it shows, and rows left out
are said on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kling_cli.clock import FakeClock
from kling_cli.sandbox.server import Sandbox, SandboxConfig

FAST = ("--interval", "0.05")


def test_a_stalled_task_keeps_the_progress_kling_saw(kling, stalling) -> None:
    """The journal was written only when the status changed: a task seen at 99% read
    `in_progress 0%` in `kling list`."""
    result = kling("generate", "[stall] a fox", "--wait", "--stall-timeout", "0.3", *FAST)
    assert result.exit_code == 7, result.stderr
    (doc,) = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert (doc["status"], doc["progress"]) == ("in_progress", 99)


@pytest.fixture
def instant(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[Sandbox]:
    """A sandbox (the CLI pointed at it) whose tasks are completed when they are sent: every
    answer a command hears of them, the send's included, is the final one."""
    with Sandbox(config=SandboxConfig(queue_seconds=0, run_seconds=0, clock=clock.now)) as sb:
        monkeypatch.setenv("KLING_BASE_URL", sb.base_url)
        monkeypatch.setenv("KLING_API_KEY", "sk-test-0123456789abcdef")
        yield sb


@pytest.mark.parametrize(
    "run",
    [
        ("generate", "a fox", "--wait", "-q", *FAST),
        ("generate", "a fox", "-o", "fox.mp4", *FAST),
        ("--no-progress", "batch", "lines.jsonl", *FAST),
    ],
    ids=["generate --wait", "generate -o", "batch"],
)
def test_every_command_records_the_video_url_it_heard(kling, instant, run) -> None:
    """Only wait, status and download recorded it: a task whose send already answered
    `completed` had no video URL in `kling list` after generate --wait, generate -o or batch."""
    Path("lines.jsonl").write_text('{"prompt": "a fox"}\n')
    assert kling(*run).exit_code == 0
    (doc,) = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    (task,) = instant.tasks()
    assert doc["state"] == "completed"
    assert doc["video_url"] == f"{instant.file_base_url}/videos/{task.id}.mp4"
    detail = " ".join(doc["output_files"]) or doc["video_url"]  # the saved file, else the URL
    assert kling("list").stdout.rstrip("\n").split("\t")[5] == detail


def journal_of(
    home: Path, count: int, base_url: str = "https://toapis.com", prefix: str = "video_"
) -> list[str]:
    """A journal of `count` queued tasks, as earlier runs would leave it; their ids, newest
    first."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(home / JOURNAL_FILE)
    ids = [f"{prefix}{n:03}" for n in range(count)]
    for task_id in ids:
        journal.record_submitted(TaskView.of({"id": task_id, "status": "queued"}), base_url, {})
    journal.close()
    return ids[::-1]


def test_piped_output_has_every_row_and_a_limit_says_what_it_left_out(
    kling, isolated: Path
) -> None:
    """`--limit 20` by default silently cut --json and piped output: the README's CSV of the
    journal exported 20 rows."""
    ids = journal_of(isolated, 25)
    piped = kling("list")
    assert [line.split("\t")[0] for line in piped.stdout.splitlines()] == ids
    assert piped.stderr == ""
    docs = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert [doc["id"] for doc in docs] == ids
    cut = kling("list", "-q", "-n", "20")
    assert cut.stdout.split() == ids[:20]
    assert cut.stderr == "kling: 5 more tasks not shown: kling list -n 25\n"
    assert kling("list", "-q", "-n", "25").stderr == ""


def test_refresh_polls_the_rows_not_final_and_records_what_it_hears(kling, against, clock) -> None:
    """A task never polled stayed `queued` in `kling list` for ever."""
    ids = [kling("generate", f"fox {n}", "-q").stdout.strip() for n in range(2)][::-1]
    clock.advance(60)  # both are done at the service
    assert [line.split("\t")[1] for line in kling("list").stdout.splitlines()] == ["queued"] * 2
    before = len(against.log)
    result = kling("list", "--refresh")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(row[0], row[1], row[2]) for row in rows] == [(i, "completed", "100%") for i in ids]
    assert all(row[5].startswith(against.file_base_url) for row in rows)  # the video URL
    polls = [r.path for r in against.log[before:]]
    assert sorted(polls) == sorted(f"/v1/videos/generations/{i}" for i in ids)
    docs = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert [doc["state"] for doc in docs] == ["completed", "completed"]  # recorded
    before = len(against.log)
    assert kling("list", "--refresh").exit_code == 0
    assert len(against.log) == before  # final rows are not asked about again


def test_refresh_leaves_the_rows_of_another_base_url_and_the_rows_not_shown(
    kling, against, isolated: Path
) -> None:
    old = journal_of(isolated, 2, base_url="https://gateway.example.com")
    mine = kling("generate", "a fox", "-q").stdout.strip()
    result = kling("list", "--refresh", "-n", "2")
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [mine, old[0]]
    assert (
        f"kling: 1 task submitted to another base URL not refreshed (this run's is "
        f"{against.base_url}): {old[0]}" in result.stderr
    )
    asked = [r.path for r in against.log if r.method == "GET"]
    assert asked == [f"/v1/videos/generations/{mine}"]


def test_refresh_of_an_unknown_task_warns_and_a_dead_service_is_an_error(
    kling, against, isolated: Path, monkeypatch
) -> None:
    ghost = journal_of(isolated, 1, base_url=against.base_url)[0]
    result = kling("list", "--refresh")
    assert result.exit_code == 0
    assert result.stdout.split("\t")[:2] == [ghost, "queued"]  # as the journal had it
    assert f"kling: warning: could not refresh {ghost}: the service answered 404" in (result.stderr)
    monkeypatch.setenv("KLING_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    journal_of(isolated, 1, base_url="http://127.0.0.1:9", prefix="video_dead")
    result = kling("list", "--refresh", "--json")
    assert result.exit_code == 5
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["queued"] * 2
    error = json.loads(result.stderr.splitlines()[-1])["error"]
    assert error["message"].startswith("1 task not refreshed: could not reach 127.0.0.1")
