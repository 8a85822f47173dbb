"""Re-runs that just work (the issue "Used as people use it", items 3 and 5): a second
`wait -o` or `download -o` onto the journal's own file for that task succeeds without fetching
it again; `--timeout 0` looks once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox

FAST = ("--interval", "0.1")


def video_gets(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.log if r.listener == "files")


@pytest.mark.parametrize("command", ["wait", "download"])
def test_a_second_run_onto_the_task_s_own_file_succeeds_without_fetching_it(
    kling, against: Sandbox, tmp_path: Path, command: str
) -> None:
    task_id = kling("generate", "a fox", "-q").stdout.strip()
    first = kling("wait", task_id, "-o", f"{tmp_path}/", *FAST)
    assert first.exit_code == 0, first.stderr
    saved = tmp_path / f"{task_id}.mp4"
    fetched = video_gets(against)
    again = kling(command, task_id, "-o", f"{tmp_path}/", "-q")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == str(saved.resolve())
    assert video_gets(against) == fetched  # not fetched again


def test_a_different_file_at_the_target_is_still_refused(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    task_id = kling("generate", "a fox", "-q").stdout.strip()
    assert kling("wait", task_id, "-o", f"{tmp_path}/", *FAST).exit_code == 0
    saved = tmp_path / f"{task_id}.mp4"
    saved.write_bytes(b"someone else's video")  # not what kling saved: another size
    refused = kling("download", task_id, "-o", f"{tmp_path}/")
    assert refused.exit_code == 2 and "already exists" in refused.stderr
    other = tmp_path / "other.mp4"
    other.write_bytes(b"x")
    assert kling("download", task_id, "-o", str(other)).exit_code == 2
    assert kling("download", task_id, "-o", str(other), "--force").exit_code == 0


def test_timeout_0_looks_once(kling, against: Sandbox, tmp_path: Path) -> None:
    done = kling("generate", "a fox", "--wait", "--json", *FAST)
    done_id = json.loads(done.stdout)["id"]
    queued_id = kling("generate", "a cat", "-q").stdout.strip()
    result = kling("wait", done_id, queued_id, "--timeout", "0", "-o", f"{tmp_path}/")
    assert result.exit_code == 7
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{done_id}\tcompleted\t100%\t{tmp_path}")  # saved
    assert lines[1].startswith(f"{queued_id}\tqueued\t")  # as it stands
    assert f"kling wait {queued_id}" in result.stderr  # how to wait for it
    as_json = kling("wait", queued_id, "--timeout", "0", "--json")
    assert json.loads(as_json.stdout)["id"] == queued_id  # its state, not {}
    sent = kling("generate", "a dog", "--wait", "--timeout", "0", "-q")
    assert sent.exit_code == 7 and "not sent in time" not in sent.stderr
    assert kling("wait", done_id, "--timeout", "0", env={"KLING_TIMEOUT": "0"}).exit_code == 0
