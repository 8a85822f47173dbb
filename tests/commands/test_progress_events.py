"""--progress json (CLI.md "Progress for machines"): every stderr line of real runs parsed and
checked against the schema kling ships; and the other --progress modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from kling_cli.sandbox.server import Sandbox

FAST = ("--interval", "0.05")
SCHEMA = json.loads(
    resources.files("kling_cli").joinpath("schemas/progress-events.schema.json").read_text()
)


def events(stderr: str) -> list[dict]:
    """Every line of stderr: each one must be an event of the schema (nothing else is there)."""
    parsed = []
    for line in stderr.splitlines():
        event = json.loads(line)
        jsonschema.validate(event, SCHEMA)
        parsed.append(event)
    return parsed


def names(evs: list[dict]) -> list[str]:
    return [e["event"] for e in evs]


def test_generate_wait_save_as_events(kling, against) -> None:
    result = kling("--progress", "json", "generate", "a fox", "-o", "fox.mp4", "-q", *FAST)
    assert result.exit_code == 0, result.stderr
    evs = events(result.stderr)
    task_id = result.stdout.strip().rsplit("/", 1)[0] and evs[0]["task_id"]
    assert names(evs)[0] == "submitted" and names(evs)[-1] == "saved"
    statuses = [(e["status"], e["progress"]) for e in evs if e["event"] == "status"]
    assert statuses[0] == ("queued", 0) and statuses[-1] == ("completed", 100)
    assert len(statuses) == len(set(statuses))  # only when status or progress changed
    downloads = [e for e in evs if e["event"] == "download"]
    assert downloads and downloads[-1]["bytes"] == downloads[-1]["total"] > 0
    assert evs[-1] == {**evs[-1], "task_id": task_id, "file": str(Path("fox.mp4").resolve())}
    assert Path(result.stdout.strip()).exists()  # -q still prints the path on stdout


def test_errors_are_error_events_and_nothing_else_is_on_stderr(kling, against) -> None:
    task_id = kling("generate", "[fail] a fox", "-q").stdout.strip()
    result = kling("wait", task_id, "gone_id", *FAST, env={"KLING_PROGRESS": "json"})
    assert result.exit_code == 6
    errors = [e["error"] for e in events(result.stderr) if e["event"] == "error"]
    assert [e["exit_code"] for e in errors] == [6, 4]
    assert task_id in errors[0]["message"] and errors[1]["task_id"] == "gone_id"


def test_a_usage_error_is_an_error_event(kling) -> None:
    result = kling("--progress", "json", "generate", "a fox", "--bogus")
    assert result.exit_code == 2
    (event,) = events(result.stderr)
    assert event["event"] == "error" and event["error"]["type"] == "usage"


def test_uploads_and_notes_in_the_sandbox(kling, tmp_path: Path) -> None:
    png = tmp_path / "me.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3000))
    result = kling(
        "--sandbox", "--progress", "json", "generate", "<<<image_1>>> hi", "-i", str(png)
    )
    assert result.exit_code == 0, result.stderr
    evs = events(result.stderr)  # the sandbox's "using the built-in sandbox" note is not there
    uploads = [e for e in evs if e["event"] == "upload"]
    assert uploads[-1]["file"] == str(png) and uploads[-1]["bytes"] == uploads[-1]["total"]
    assert names(evs)[-2:] == ["submitted", "status"]  # not followed: its first status only


def test_batch_lines_as_events(kling, against, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a fox"}\n{"prompt": "[fail] a cat"}\n')
    result = kling(
        "--progress", "json", "batch", str(src), "-o", str(tmp_path / "out"), *FAST
    )  # fmt: skip
    assert result.exit_code == 6
    evs = events(result.stderr)
    assert names(evs).count("submitted") == 2 and names(evs).count("saved") == 1
    assert "batch:" not in result.stderr  # the summary is a note: not in the event stream


def test_a_stalled_task_is_a_stalled_event_then_its_error(kling, stalling, tmp_path: Path) -> None:
    args = ("generate", "[stall] a fox", "--wait", "--stall-timeout", "0.3", *FAST)
    result = kling("--progress", "json", *args)
    assert result.exit_code == 7
    evs = events(result.stderr)  # every line checked against the shipped schema
    task_id = evs[0]["task_id"]
    assert names(evs)[0] == "submitted" and names(evs)[-2:] == ["stalled", "error"]
    assert evs[-2] == {"event": "stalled", "time": evs[-2]["time"], "task_id": task_id}
    assert evs[-1]["error"]["type"] == "stalled" and evs[-1]["error"]["task_id"] == task_id
    assert [e["progress"] for e in evs if e["event"] == "status"][-1] == 99
    src = tmp_path / "in.jsonl"  # batch: the stalled line's event, once; the other line saved
    src.write_text('{"prompt": "[stall] a cat"}\n{"prompt": "a dog"}\n')
    out = str(tmp_path / "out")
    result = kling("--progress", "json", "batch", str(src), "-o", out, "--stall-timeout", "0.3")
    assert result.exit_code == 7
    evs = events(result.stderr)
    assert names(evs).count("stalled") == 1 and names(evs).count("saved") == 1


def test_events_on_a_real_pipe_from_a_subprocess(live_sandbox: Sandbox, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KLING_PROGRESS": "json",
        "KLING_BASE_URL": live_sandbox.base_url,
        "KLING_API_KEY": "sk-test-0123456789abcdef",
    }
    result = subprocess.run(
        [sys.executable, "-m", "kling_cli", "generate", "a fox", "--wait", *FAST],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    assert names(events(result.stderr))[-1] == "status"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--progress", "plain"), {}, "kling: video_"),
        (("--progress", "off"), {}, ""),
        (("--no-progress",), {"KLING_PROGRESS": "plain"}, ""),
        ((), {"KLING_PROGRESS": "plain"}, "kling: video_"),
    ],
)
def test_the_other_modes(kling, against, args, env, expected) -> None:
    result = kling(*args, "generate", "a fox", "--wait", "-q", *FAST, env=env)
    assert result.exit_code == 0
    assert (expected in result.stderr) if expected else result.stderr == ""


def test_a_bad_mode_is_a_usage_error(kling, against) -> None:
    result = kling("--progress", "loud", "generate", "a fox")
    assert result.exit_code == 2 and "--progress must be one of" in result.stderr
    from_env = kling("generate", "a fox", env={"KLING_PROGRESS": "loud"})
    assert from_env.exit_code == 2 and "KLING_PROGRESS must be one of" in from_env.stderr


def test_the_schema_ships_in_the_package() -> None:
    assert SCHEMA["title"].startswith("kling --progress json")
    assert isinstance(Sandbox, type)
