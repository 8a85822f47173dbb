"""Where `-o` saves, through the CLI entry point: `download -o -` streams the video to stdout;
a file in a folder not made yet is saved there (as `-o newfolder/` was); and nothing but a
regular file is ever replaced, --force or not (a symlink, a FIFO: never /dev/stdout or
/dev/null, which these tests stand in for in a temporary folder)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kling_cli.app import app

FAST = ("--interval", "0.05")


def completed(kling, prompt: str = "a fox") -> str:
    result = kling("generate", prompt, "--wait", *FAST, "-q")
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip().rsplit("/", 1)[-1].removesuffix(".mp4")  # from the video URL


def run_bytes(clock, *args: str):
    """The CLI through its entry point, stdout kept as bytes (a video is not text)."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False, obj=clock)


def test_download_to_stdout_writes_the_video_and_nothing_else(kling, against, clock) -> None:
    task_id = completed(kling)
    result = run_bytes(clock, "download", task_id, "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == against.clip_bytes()
    assert not Path("-").exists() and os.listdir(".") == []
    assert run_bytes(clock, "download", task_id, "-o", "-", "-q").stdout_bytes == (
        against.clip_bytes()
    )


def test_download_to_stdout_of_a_task_not_done_says_so(kling, against, clock) -> None:
    queued = kling("generate", "a fox", "-q").stdout.strip()
    result = run_bytes(clock, "download", queued, "-o", "-")
    assert result.exit_code == 7 and result.stdout_bytes == b""
    assert f"kling: error: task {queued} is not final yet (still queued)" in result.stderr
    failed = kling("generate", "[fail] a fox", "--wait", *FAST, "--json")
    failed_id = failed.stdout.split('"id":"', 1)[1].split('"', 1)[0]
    result = run_bytes(clock, "download", failed_id, "-o", "-")
    assert result.exit_code == 6 and result.stdout_bytes == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("download", "a", "b", "-o", "-"), "-o - writes one video to stdout, but there are"),
        (("download", "a", "-o", "-", "--json"), "--json and -o - cannot be used together"),
        (("wait", "a", "-o", "-"), "-o - (the video on stdout) is for kling download"),
        (("generate", "a fox", "-o", "-"), "-o - (the video on stdout) is for kling download"),
    ],
)
def test_stdout_is_for_one_download(kling, against, args: tuple[str, ...], message: str) -> None:
    """`-o -` wrote a file named `-`."""
    result = kling(*args)
    assert result.exit_code == 2 and message in result.stderr
    assert against.log == [] and not Path("-").exists()


def test_a_file_in_folders_not_made_yet_is_saved_there(kling, against) -> None:
    """`-o nodir/sub/f.mp4` exited 2 while `-o newfolder/` made the folder."""
    result = kling("generate", "a fox", "-o", "nodir/sub/fox.mp4", *FAST, "-q")
    assert result.exit_code == 0, result.stderr
    assert Path("nodir/sub/fox.mp4").read_bytes() == against.clip_bytes()


def test_a_file_where_a_folder_should_be_is_refused_before_sending(kling, against) -> None:
    Path("notes").write_text("mine")
    result = kling("generate", "a fox", "-o", "notes/sub/fox.mp4")
    assert result.exit_code == 2 and "kling: error: notes is not a folder" in result.stderr
    assert against.log == [] and Path("notes").read_text() == "mine"


def test_force_never_replaces_a_symlink(kling, against, tmp_path: Path) -> None:
    """As root, `wait ID -o /dev/stdout --force` replaced the /dev/stdout symlink."""
    task_id = completed(kling)
    real = tmp_path / "real.mp4"
    real.write_bytes(b"precious")
    link = tmp_path / "link.mp4"
    link.symlink_to(real)
    dangling = tmp_path / "dangling.mp4"
    dangling.symlink_to(tmp_path / "nowhere.mp4")
    for target, force in ((link, "--force"), (dangling, "--force"), (dangling, "-q")):
        before = len(against.log)
        for command in ("download", "wait"):
            result = kling(command, task_id, "-o", str(target), force)
            assert result.exit_code == 2, result.stderr
            assert f"kling: error: {target} is a symlink: kling saves a video only" in (
                result.stderr
            )
        assert len(against.log) == before  # refused before anything was sent
        assert target.is_symlink()
    assert real.read_bytes() == b"precious" and not (tmp_path / "nowhere.mp4").exists()


def test_force_never_replaces_a_fifo(kling, against, tmp_path: Path) -> None:
    task_id = completed(kling)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = kling("download", task_id, "-o", str(fifo), "--force")
    assert result.exit_code == 2
    assert f"kling: error: {fifo} is a named pipe (FIFO)" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_symlink_that_appears_while_downloading_is_not_replaced(
    kling, against, tmp_path: Path, monkeypatch
) -> None:
    """Checked again just before the rename: the check before sending is minutes earlier."""
    from kling_cli import download

    task_id = completed(kling)
    target = tmp_path / "fox.mp4"
    real = tmp_path / "real.mp4"
    real.write_bytes(b"precious")
    fetch_into = download._fetch_into

    def then_a_link(*args, **kwargs):
        fetch_into(*args, **kwargs)
        target.symlink_to(real)

    monkeypatch.setattr(download, "_fetch_into", then_a_link)
    result = kling("download", task_id, "-o", str(target), "--force")
    assert result.exit_code == 2 and "is a symlink" in result.stderr
    assert target.is_symlink() and real.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.slow
def test_download_to_a_real_stdout(live_sandbox, tmp_path: Path) -> None:
    """In another process, its stdout a file: the bytes of the video, and nothing else."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "KLING_HOME": str(tmp_path / "home"),
        "KLING_BASE_URL": live_sandbox.base_url,
        "KLING_API_KEY": "k" * 20,
    }
    kling = [sys.executable, "-m", "kling_cli"]
    made = subprocess.run(
        [*kling, "generate", "a fox", "--wait", "--interval", "0.1", "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    task_id = made.stdout.split('"id":"', 1)[1].split('"', 1)[0]
    video = tmp_path / "video.mp4"
    with video.open("wb") as out:
        result = subprocess.run(
            [*kling, "download", task_id, "-o", "-"],
            stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert video.read_bytes() == live_sandbox.clip_bytes()
    assert f"kling: downloading {task_id}: done" in result.stderr


def test_download_to_stdout_reports_download_events(kling, against, clock) -> None:
    """--progress json: `download` events of the task (the byte bar's events said `upload`)."""
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads(
        resources.files("kling_cli").joinpath("schemas/progress-events.schema.json").read_text()
    )
    task_id = completed(kling)
    result = run_bytes(clock, "--progress", "json", "download", task_id, "-o", "-")
    assert result.exit_code == 0 and result.stdout_bytes == against.clip_bytes()
    events = [json.loads(line) for line in result.stderr.splitlines()]
    for event in events:
        jsonschema.validate(event, schema)
    assert {e["event"] for e in events} == {"download"}
    size = len(against.clip_bytes())
    assert events[-1] == {**events[-1], "task_id": task_id, "bytes": size, "total": size}
