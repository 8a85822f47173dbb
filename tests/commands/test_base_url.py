"""Tasks from another base URL (issue "Used as people use it", item 9): the journal knows where
each task was submitted. A sandbox's task is never sent to another address (exit 2, nothing
sent); one of another service is sent with a warning saying where it came from, since a bare
404 would not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize("command", ["wait", "status", "download"])
def test_a_sandbox_task_is_never_sent_to_another_host(
    kling, against, monkeypatch, command: str
) -> None:
    """`kling wait ID` on an id of a `kling sandbox` run sent it to the real service with the
    configured key, and retried for 17 s."""
    task_id = kling("generate", "a fox", "-q").stdout.strip()  # KLING_BASE_URL: the sandbox
    monkeypatch.delenv("KLING_BASE_URL")  # a new shell: the configured (default) service
    sent = len(against.log)
    result = kling(command, task_id)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"kling: error: task {task_id} was submitted to the sandbox at {against.base_url}, not "
        "to https://toapis.com: it lives only in that sandbox",
        f"kling: hint: with that sandbox running, use --base-url {against.base_url} (or "
        "KLING_BASE_URL)",
    ]
    assert len(against.log) == sent
    assert kling("--base-url", against.base_url, command, task_id).exit_code in (0, 7)


def test_another_sandbox_is_another_host_too(kling, against, isolated: Path) -> None:
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(isolated / JOURNAL_FILE)
    task = TaskView.of({"id": "video_OLD", "status": "queued"})
    journal.record_submitted(task, "http://127.0.0.1:9", {"prompt": "a fox"})
    journal.close()
    result = kling("wait", "video_OLD", "--json")
    assert result.exit_code == 2 and against.log == []
    error = json.loads(result.stderr)["error"]
    assert error["task_id"] == "video_OLD" and "http://127.0.0.1:9" in error["message"]


def test_a_task_of_another_service_is_sent_with_where_it_came_from(
    kling, against, isolated: Path
) -> None:
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(isolated / JOURNAL_FILE)
    task = TaskView.of({"id": "video_GW", "status": "queued"})
    journal.record_submitted(task, "https://gateway.example.com/v1", {"prompt": "a fox"})
    journal.close()
    result = kling("status", "video_GW")
    assert result.exit_code == 4  # this service does not know it: its 404
    assert result.stderr.splitlines()[0] == (
        f"kling: warning: task video_GW was submitted to https://gateway.example.com/v1, not "
        f"to {against.base_url}; if this service does not know it, use --base-url "
        "https://gateway.example.com/v1 (or the --profile that sets it)"
    )
    assert "404" in result.stderr


def test_the_same_service_spelled_another_way_is_the_same(kling, against, monkeypatch) -> None:
    task_id = kling("generate", "a fox", "-q").stdout.strip()
    monkeypatch.setenv("KLING_BASE_URL", against.base_url + "/v1/")
    result = kling("status", task_id)
    assert result.exit_code == 0 and result.stderr == ""
