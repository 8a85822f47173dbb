"""--stall-timeout and the stall_timeout key through the CLI entry point, against a sandbox whose
`[stall]` tasks climb to 99% and stay in_progress forever (CLI.md: exit 7, "it stalled").

The `stalling` sandbox (conftest) has no queue and a 0.2 s run, so a task moves at every poll
until it stalls, and a stall timeout of 0.3 s ends it about half a second after it was sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FAST = ("--interval", "0.05")
STALL = ("--stall-timeout", "0.3")
MESSAGE = "stalled: no change in status or progress for 0.3 s (last: in_progress 99%)"


def submit(kling, prompt: str) -> str:
    result = kling("generate", prompt, "-q")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_generate_wait_stalls_with_exit_7_and_says_how_to_go_on(kling, stalling) -> None:
    result = kling("generate", "[stall] a fox", "--wait", *STALL, *FAST, "-o", "fox.mp4")
    assert result.exit_code == 7, result.stderr
    (task_id,) = [task.id for task in stalling.tasks()]
    assert f"kling: error: task {task_id} {MESSAGE}" in result.stderr
    assert f"kling: hint: wait for it with: kling wait {task_id} -o fox.mp4" in result.stderr
    assert result.stdout.split("\t")[:3] == [task_id, "in_progress", "99%"]
    assert not Path("fox.mp4").exists()
    assert kling("list", "-q").stdout.split() == [task_id]  # the journal still has it


def test_json_reports_the_stall_as_an_error_document(kling, stalling) -> None:
    result = kling("generate", "[stall] a fox", "--wait", *STALL, *FAST, "--json")
    assert result.exit_code == 7
    task = json.loads(result.stdout)
    assert (task["status"], task["progress"]) == ("in_progress", 99)
    error = json.loads(result.stderr.splitlines()[-1])["error"]
    assert error["type"] == "stalled" and error["exit_code"] == 7
    assert error["task_id"] == task["id"] and MESSAGE in error["message"]
    assert error["hint"] == f"wait for it with: kling wait {task['id']}"


def test_wait_one_task_stalls_the_other_completes(kling, stalling) -> None:
    ok, stuck = submit(kling, "a fox"), submit(kling, "[stall] a cat")
    result = kling("--no-progress", "wait", stuck, ok, *STALL, *FAST, "-q")
    assert result.exit_code == 7
    assert result.stdout.strip().startswith(stalling.file_base_url)  # ok's video URL
    assert f"kling wait {stuck}" in result.stderr and ok not in result.stderr


def test_batch_the_stalled_line_ends_and_the_others_go_on(kling, stalling, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    rows = [{"prompt": "a fox"}, {"prompt": "[stall] a cat"}, {"prompt": "a dog"}]
    src.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ("--no-progress", "batch", str(src), "-o", str(tmp_path / "out"), *STALL, *FAST)
    result = kling(*args, "--json")
    assert result.exit_code == 7
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("status") for line in lines] == ["completed", "in_progress", "completed"]
    assert all(Path(lines[n]["output_files"][0]).is_file() for n in (0, 2))
    error = lines[1]["error"]
    assert error["type"] == "stalled" and error["exit_code"] == 7 and MESSAGE in error["message"]
    assert "run the same command again" in error["hint"]
    again = kling(*args)  # it waits for the stalled line again; nothing is sent twice
    assert again.exit_code == 7 and stalling.tasks_created == 3
    assert "line 2: exit 7: task" in again.stderr and MESSAGE in again.stderr


def test_no_stall_timeout_by_default(kling, stalling) -> None:
    result = kling("generate", "[stall] a fox", "--wait", "--timeout", "0.5", *FAST)
    assert result.exit_code == 7 and "stalled" not in result.stderr
    assert "is not final yet (still in_progress)" in result.stderr


def test_the_stall_timeout_key_from_the_file_and_the_environment(kling, stalling) -> None:
    task_id = submit(kling, "[stall] a fox")
    assert kling("config", "set", "stall_timeout", "0.3").exit_code == 0
    from_file = kling("wait", task_id, *FAST)
    assert from_file.exit_code == 7 and MESSAGE in from_file.stderr
    from_env = kling("wait", task_id, *FAST, env={"KLING_STALL_TIMEOUT": "0.2"})
    assert from_env.exit_code == 7 and "for 0.2 s" in from_env.stderr
    from_flag = kling("wait", task_id, *FAST, "--stall-timeout", "0.25")
    assert from_flag.exit_code == 7 and "for 0.25 s" in from_flag.stderr


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_stall_timeout_must_be_positive(kling, stalling, value: str) -> None:
    result = kling("generate", "a fox", "--wait", "--stall-timeout", value)
    assert result.exit_code == 2 and "is not in the range x>0" in result.stderr
    result = kling("config", "set", "--", "stall_timeout", value)
    assert result.exit_code == 2 and "must be a positive number of seconds" in result.stderr
    assert stalling.tasks_created == 0


def test_generate_without_waiting_warns_that_it_does_nothing(kling, stalling) -> None:
    result = kling("generate", "a fox", "--stall-timeout", "60")
    assert result.exit_code == 0
    assert "--stall-timeout and --interval apply only with --wait or -o" in result.stderr
