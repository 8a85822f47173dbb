"""kling generate through the CLI entry point, against the sandbox over real sockets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kling_cli.store.journal import JOURNAL_FILE, Journal
from tests.scripted_server import Reply, ScriptedServer

FAST = ("--interval", "0.1")


def posts(sandbox) -> list:
    return [r for r in sandbox.log if r.method == "POST" and r.path.endswith("/videos/generations")]


def test_submit_prints_task_id_quietly(kling, against) -> None:
    result = kling("generate", "a red fox", "-q")
    assert result.exit_code == 0
    task_id = result.stdout.strip()
    assert task_id.startswith("video_") and "\n" not in task_id
    sent = posts(against)[0].json
    business_id = sent.pop("client_business_id")  # one kling made for this send (CLI.md)
    assert sent == {
        "model": "kling-v3-omni", "prompt": "a red fox", "mode": "std", "duration": 5,
        "aspect_ratio": "16:9",
    }  # fmt: skip
    assert re.fullmatch(r"kling-\d{8}T\d{6}-[0-9a-f]{12}", business_id)


def test_submit_json_is_the_service_task(kling, against) -> None:
    result = kling("generate", "a red fox", "--json")
    task = json.loads(result.stdout)
    assert task["object"] == "generation.task" and task["status"] == "queued"
    assert "output_files" not in task


def test_submit_plain_line_when_piped(kling, against) -> None:
    result = kling("generate", "a red fox")
    fields = result.stdout.rstrip("\n").split("\t")
    assert fields[0].startswith("video_") and fields[1] == "queued"
    assert "kling wait" in result.stderr


def test_options_reach_the_body(kling, against) -> None:
    result = kling(
        "generate", "a fox", "--mode", "pro", "--duration", "10", "--aspect-ratio", "9:16",
        "--model", "kling-v9", "--metadata", "seed=42", "--metadata", "style=noir",
        "--set", "audio=true", "--set", 'extra={"a": [1]}', "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    body = posts(against)[0].json
    assert body["mode"] == "pro" and body["duration"] == 10 and body["aspect_ratio"] == "9:16"
    assert body["model"] == "kling-v9"
    assert body["metadata"] == {"seed": 42, "style": "noir"}
    assert body["audio"] is True and body["extra"] == {"a": [1]}


def test_config_defaults_apply(kling, against) -> None:
    kling("config", "set", "mode", "pro")
    kling("config", "set", "duration", "10")
    kling("generate", "x", "-q", env={"KLING_ASPECT_RATIO": "1:1"})
    body = posts(against)[0].json
    assert (body["mode"], body["duration"], body["aspect_ratio"]) == ("pro", 10, "1:1")


def test_prompt_from_stdin(kling, against) -> None:
    result = kling("generate", "-", "-q", input="a calm lake at dawn\n")
    assert result.exit_code == 0
    assert posts(against)[0].json["prompt"] == "a calm lake at dawn"


def test_dry_run_sends_nothing_and_needs_no_key(kling, sandbox) -> None:
    result = kling("--base-url", sandbox.base_url, "generate", "a fox", "--dry-run", "--set", "x=1")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["x"] == 1
    assert sandbox.log == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "ultra"], "--mode"),
        (["--duration", "16"], "--duration"),
        (["--aspect-ratio", "4:3"], "--aspect-ratio"),
        (["-i", "data:image/png;base64,AAAA"], "data: URLs"),
        (["-i", "missing.png"], "does not exist"),
        (["--set", "novalue"], "KEY=VALUE"),
        (["--metadata", "=x"], "KEY=VALUE"),
        (["--set", "audio=true", "--set", "video_list=[]"], "audio and video_list"),
    ],
)
def test_validation_errors_exit_2_and_send_nothing(kling, against, args, message) -> None:
    result = kling("generate", "a fox", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert against.log == []


def test_reference_to_missing_image_exits_2(kling, against) -> None:
    result = kling("generate", "<<<image_2>>> waves", "-i", "https://img.example/a.png")
    assert result.exit_code == 2 and "<<<image_2>>>" in result.stderr
    assert against.log == []


def test_empty_prompt_exits_2(kling, against) -> None:
    assert kling("generate", "  ").exit_code == 2
    assert kling("generate", "-", input="").exit_code == 2
    assert against.log == []


def test_no_key_exits_3_and_says_how(kling, sandbox) -> None:
    result = kling("--base-url", sandbox.base_url, "generate", "a fox")
    assert result.exit_code == 3
    assert "kling config set api_key" in result.stderr
    assert sandbox.log == []


def test_images_uploaded_first_and_note_about_reference(kling, against, tmp_path: Path) -> None:
    png = tmp_path / "face.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    result = kling(
        "generate", "waves hello", "-i", str(png), "-i", "https://img.example/b.jpg", "-q"
    )
    assert result.exit_code == 0, result.stderr
    assert "<<<image_1>>>" in result.stderr  # the service will prepend it
    uploads = [r for r in against.log if r.path.endswith("/uploads/images")]
    assert len(uploads) == 1
    urls = posts(against)[0].json["image_urls"]
    assert urls[0].startswith(against.file_base_url) and urls[1] == "https://img.example/b.jpg"


def test_wait_and_download_to_file(kling, against, tmp_path: Path) -> None:
    target = tmp_path / "fox.mp4"
    result = kling("generate", "a fox", "-o", str(target), *FAST, "-q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(target.resolve())
    assert target.read_bytes() == against.clip_bytes("16:9")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_wait_json_has_output_files(kling, against, tmp_path: Path) -> None:
    result = kling(
        "generate", "a fox", "--aspect-ratio", "1:1", "-o", str(tmp_path) + "/", *FAST, "--json"
    )
    assert result.exit_code == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["status"] == "completed"
    (saved,) = task["output_files"]
    assert Path(saved).name == f"{task['id']}.mp4"
    assert Path(saved).read_bytes() == against.clip_bytes("1:1")


def test_wait_without_output_prints_url(kling, against) -> None:
    result = kling("generate", "a fox", "--wait", *FAST, "-q")
    assert result.exit_code == 0
    assert result.stdout.strip().startswith(against.file_base_url)


def test_existing_file_is_not_overwritten_and_nothing_sent(kling, against, tmp_path: Path) -> None:
    target = tmp_path / "fox.mp4"
    target.write_bytes(b"precious")
    result = kling("generate", "a fox", "-o", str(target))
    assert result.exit_code == 2 and "--force" in result.stderr
    assert target.read_bytes() == b"precious" and against.log == []
    forced = kling("generate", "a fox", "-o", str(target), "--force", *FAST, "-q")
    assert forced.exit_code == 0 and target.read_bytes() == against.clip_bytes()


def test_an_output_folder_that_cannot_be_made_exits_2(kling, against, tmp_path: Path) -> None:
    """A missing folder is made when the video is saved (tests/commands/test_output_paths.py);
    one that cannot be made is found before anything is sent."""
    (tmp_path / "a-file").write_text("")
    result = kling("generate", "a fox", "-o", str(tmp_path / "a-file" / "nope" / "fox.mp4"))
    assert result.exit_code == 2 and "is not a folder" in result.stderr
    assert against.log == []


def test_failed_task_exits_6_with_task_on_stdout(kling, against) -> None:
    result = kling("generate", "[fail] a fox", "--wait", *FAST, "--json")
    assert result.exit_code == 6
    assert json.loads(result.stdout)["status"] == "failed"
    assert "failed" in result.stderr


def test_completed_without_url_exits_6(kling, against) -> None:
    result = kling("generate", "[no-video] a fox", "--wait", *FAST)
    assert result.exit_code == 6
    assert "no http(s) video URL" in result.stderr


def test_timeout_exits_7_and_says_how_to_resume(kling, against) -> None:
    result = kling("generate", "[slow] a fox", "--wait", "--timeout", "0.3", *FAST)
    assert result.exit_code == 7
    assert "kling wait video_" in result.stderr


def test_task_id_is_journaled(kling, against, isolated: Path) -> None:
    task_id = kling("generate", "a fox", "-q").stdout.strip()
    entry = Journal(isolated / JOURNAL_FILE).get(task_id)
    assert entry is not None and entry.params["prompt"] == "a fox"
    assert entry.base_url == against.base_url


def test_submit_that_may_have_arrived_is_not_resent(kling, against) -> None:
    against.config.faults = 1.0
    against.config.fault_kinds = ["drop_after"]
    result = kling("generate", "a fox")
    assert result.exit_code == 5
    assert "no second task" in result.stderr and "kling list" in result.stderr
    assert len(posts(against)) == 1 and against.tasks_created == 1
    listed = kling("list").stdout.splitlines()  # the hint is true: it is listed
    assert len(listed) == 1
    business_id, status, _, _, prompt, detail = listed[0].split("\t")
    assert business_id == posts(against)[0].json["client_business_id"]  # what finds it later
    assert status == "uncertain" and prompt == "a fox"
    assert "may have reached" in detail
    assert kling("list", "--json").stdout.count("\n") == 1


def test_a_batch_line_that_may_have_arrived_is_listed_too(kling, against, tmp_path) -> None:
    against.config.faults = 1.0
    against.config.fault_kinds = ["drop_after"]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "a fox"}\n')
    assert kling("--no-progress", "batch", str(jobs)).exit_code == 5
    (line,) = kling("list").stdout.splitlines()
    assert "\tuncertain\t" in line and "\ta fox\t" in line


def test_rejected_request_exits_4_with_service_message(kling, against) -> None:
    # --set can send what the CLI would not check: the sandbox rejects it as the service does.
    result = kling("generate", "a fox", "--set", 'image_urls=["ftp://x"]')
    assert result.exit_code == 4
    assert "400" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("status", "code"), [(401, 3), (402, 3), (403, 3), (413, 4), (503, 5)])
def test_service_errors_map_to_exit_codes(kling, status: int, code: int) -> None:
    with ScriptedServer() as server:
        replies = [Reply(status, {"error": {"message": f"said {status}"}})] * 6
        server.add("POST", "/v1/videos/generations", *replies)
        if status >= 500:  # it may have made a task: looked for by its business id, in vain
            not_found = Reply(404, {"error": {"message": "task not found"}})
            server.add("GET", "/v1/videos/generations/order-7", *[not_found] * 5)
        args = ["generate", "a fox", "--business-id", "order-7"]
        result = kling("--base-url", server.url, "--api-key", "k" * 20, *args)
    assert result.exit_code == code
    assert f"said {status}" in result.stderr and len(result.stderr.splitlines()) <= 2


def test_sandbox_flag_runs_everything_in_process(kling, tmp_path: Path) -> None:
    result = kling("--sandbox", "generate", "a fox", "-o", str(tmp_path / "f.mp4"), *FAST, "-q")
    assert result.exit_code == 0, result.stderr
    assert "sandbox" in result.stderr
    assert (tmp_path / "f.mp4").stat().st_size > 1000


def test_same_image_is_uploaded_once_across_runs(kling, against, tmp_path: Path) -> None:
    png = tmp_path / "face.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    first = kling("generate", "<<<image_1>>> waves", "-i", str(png), "-q")
    second = kling("generate", "<<<image_1>>> smiles", "-i", str(png), "-q")
    assert first.exit_code == second.exit_code == 0
    uploads = [r for r in against.log if r.path.endswith("/uploads/images")]
    assert len(uploads) == 1
    bodies = [r.json for r in posts(against)]
    assert bodies[0]["image_urls"] == bodies[1]["image_urls"]


def test_sandbox_tasks_stay_out_of_the_journal_and_the_hint_is_true(kling) -> None:
    result = kling("--sandbox", "generate", "a red fox")
    assert result.exit_code == 0
    assert "kling wait" not in result.stderr and "--wait or -o" in result.stderr
    saved = kling("--sandbox", "generate", "a red fox", "-o", "fox.mp4", "-q")
    assert saved.exit_code == 0 and Path("fox.mp4").stat().st_size > 0
    listed = kling("list", "-q")
    assert listed.exit_code == 0 and listed.stdout == ""  # no dead sandbox ids to wait for


@pytest.mark.parametrize(
    ("prompt", "limit", "code"),
    [("[slow] a fox", ("--timeout", "0.2"), 7), ("[stall] a fox", ("--stall-timeout", "0.2"), 7)],
)
def test_a_sandbox_task_left_unfinished_gets_no_resume_command_that_cannot_work(
    kling, prompt: str, limit: tuple[str, str], code: int
) -> None:
    result = kling("--sandbox", "generate", prompt, "-o", "fox.mp4", "--interval", "0.05", *limit)
    assert result.exit_code == code
    assert "kling wait" not in result.stderr  # that sandbox is gone with the command
    assert "hint: this command's own sandbox stopped with it" in result.stderr


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        ([b"generate", b"caf\xe9 au lait", b"-o", b"latin.mp4"], b""),
        ([b"generate", b"-", b"-q"], b"caf\xe9 au lait\n"),
        ([b"batch", b"-"], b'{"prompt": "caf\xe9 au lait"}\n'),
    ],
)
def test_a_prompt_that_is_not_utf8_is_refused_before_sending(against, argv, stdin) -> None:
    """It once made a paid task, then failed to record it (exit 1): now nothing is sent."""
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"kling_cli", *argv],
        input=stdin, capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert b"not valid UTF-8" in result.stderr or b"not UTF-8 text" in result.stderr
    assert b"Traceback" not in result.stderr and against.log == []
