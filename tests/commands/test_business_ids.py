"""Business ids: no send left in doubt (CLI.md "Business ids"), through the CLI entry point
against the sandbox, whose `[lost]` marker makes a task and loses the POST's answer, and whose
`[lost-no-task]` loses the answer of a POST that made none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kling_cli.sandbox.server import Sandbox
from tests.commands.test_omni import posts
from tests.scripted_server import Reply, ScriptedServer

TASKS = "/v1/videos/generations"


def listed(kling) -> list[dict]:
    return [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]


def test_a_lost_answer_is_found_by_its_business_id_and_followed(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "fox.mp4"
    result = kling("generate", "[lost] a fox", "-o", str(out), "--interval", "0.1", "-q")
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == against.clip_bytes()
    (post,) = posts(against)
    business_id = post.json["client_business_id"]
    (task,) = against.tasks_with_business_id(business_id)
    assert result.stdout.strip() == str(out.resolve())
    asked = [r.path for r in against.log if r.method == "GET"]
    assert f"{TASKS}/{business_id}" in asked  # looked up by it
    (row,) = listed(kling)
    assert (row["id"], row["state"], row["business_id"]) == (task.id, "completed", business_id)


def test_a_recovered_send_is_said_on_stderr(kling, against: Sandbox) -> None:
    result = kling("generate", "[lost] a fox", "--json")
    assert result.exit_code == 0, result.stderr
    (post,) = posts(against)
    task_id = json.loads(result.stdout)["id"]
    assert (
        f"kling: the answer to the generation request was lost; its task {task_id} was found "
        f"under its business id {post.json['client_business_id']}\n"
    ) in result.stderr


def test_a_lost_answer_with_no_task_is_exit_5_naming_the_business_id(
    kling, against: Sandbox
) -> None:
    result = kling("generate", "[lost-no-task] a fox", "--business-id", "order-9", "-q")
    assert result.exit_code == 5
    assert "order-9" in result.stderr and "no task was found" in result.stderr
    assert len(posts(against)) == 1 and against.tasks_with_business_id("order-9") == []
    (row,) = listed(kling)
    assert (row["id"], row["status"], row["state"]) == ("order-9", "uncertain", "uncertain")
    assert row["prompt"] == "[lost-no-task] a fox"
    later = kling("status", "order-9")  # looked for again: still no task
    assert later.exit_code == 4 and "404" in later.stderr
    assert "no task was found under the business id order-9" in later.stderr
    assert "kling: hint: the send made no task, as far as the service knows now" in later.stderr
    assert kling("list", "-q").stdout.split() == ["order-9"]


def test_status_wait_and_download_take_a_business_id(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    """A send kling never heard back from, whose task the service made after all: its
    business id finds it, and the journal's row becomes the task's."""
    result = kling("generate", "[lost-no-task] a fox", "--business-id", "late-1", "-q")
    assert result.exit_code == 5
    task = against.state.create_task(
        {"model": "kling-v3-omni", "prompt": "a fox", "client_business_id": "late-1"}
    )
    assert kling("status", "late-1", "-q").exit_code == 0
    (row,) = listed(kling)
    assert (row["id"], row["business_id"]) == (task["id"], "late-1")
    waited = kling("wait", "late-1", "-o", str(tmp_path / "late.mp4"), "--interval", "0.1")
    assert waited.exit_code == 0 and (tmp_path / "late.mp4").exists()


def test_a_business_id_sent_before_is_not_sent_again(kling, against: Sandbox) -> None:
    """Running `generate --business-id order-42` twice paid twice, without a word (API.md: the
    service may not refuse the second)."""
    first = kling("generate", "a fox", "--business-id", "order-42", "-q")
    assert first.exit_code == 0
    task_id = first.stdout.strip()
    for again in (("--business-id", "order-42"), ("--set", "client_business_id=order-42")):
        result = kling("generate", "a fox", *again, "-q")
        assert result.exit_code == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"kling: error: business id order-42 was sent before (task {task_id}); "
            "it is not sent twice",
            "kling: hint: `kling wait order-42` follows that task; a new task needs a new "
            "business id",
        ]
    assert kling("generate", "[lost-no-task] a cat", "--business-id", "order-43").exit_code == 5
    uncertain = kling("generate", "a cat", "--business-id", "order-43")
    assert uncertain.exit_code == 2 and "(its send is uncertain)" in uncertain.stderr
    assert "`kling status order-43` looks for its task" in uncertain.stderr
    assert len(posts(against)) == 2 and against.business_id_counts()["order-42"] == 1


def test_the_json_error_names_the_business_id(kling, against: Sandbox) -> None:
    result = kling("generate", "[lost-no-task] a fox", "--business-id", "b-7", "--json")
    (document,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert document["error"]["business_id"] == "b-7" and document["error"]["exit_code"] == 5


def test_sigkill_during_the_send_leaves_an_uncertain_row_with_its_business_id(
    tmp_path: Path,
) -> None:
    with ScriptedServer() as api:
        api.add("POST", TASKS, Reply(200, {"id": "video_k", "status": "queued"}, delay=10))
        env = {
            **os.environ, "KLING_HOME": str(tmp_path), "KLING_BASE_URL": api.url,
            "KLING_API_KEY": "sk-kill-0123456789abcdef",
        }  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "kling_cli", "generate", "a fox", "--business-id", "kill-1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not api.seen("POST", TASKS) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        listed_run = subprocess.run(
            [sys.executable, "-m", "kling_cli", "list", "--json"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    (row,) = [json.loads(line) for line in listed_run.stdout.splitlines()]
    assert (row["id"], row["state"], row["business_id"]) == ("kill-1", "uncertain", "kill-1")
