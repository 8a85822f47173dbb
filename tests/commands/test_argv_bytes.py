"""Arguments whose bytes are not UTF-8: Python hands them over as surrogates (`\\udcff` for the
byte 0xff), which nothing can send, store or write as text. Each is refused where it comes in
(exit 2, nothing sent), or, a file name on disk, shown escaped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

NOT_UTF8 = "vid\udcff"  # what Python makes of the argument b"vid\xff"


@pytest.mark.parametrize("command", ["status", "wait", "download"])
def test_a_task_id_that_is_not_utf8_is_refused_before_sending(kling, against, command) -> None:
    result = kling(command, NOT_UTF8)
    assert result.exit_code == 2, result.stderr
    assert "error: task id vid\\xff: the text is not valid UTF-8" in result.stderr
    assert "internal error" not in result.stderr and against.log == []


def test_a_task_id_in_bytes_from_the_shell_is_refused(against) -> None:
    """The real thing: the bytes on the command line, not a string made to look like them."""
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"kling_cli", b"wait", b"ok", b"vid\xff", b"--json"],
        capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert b'"message":"task id vid\\\\xff: the text is not valid UTF-8"' in result.stderr
    assert against.log == []


@pytest.mark.parametrize(
    "argv",
    [
        ("generate", "a fox", "-o", "y\udcff.mp4"),
        ("wait", "video_1", "-o", "y\udcff/"),
        ("download", "video_1", "-o", "y\udcff.mp4"),
    ],
)
def test_an_output_path_that_is_not_utf8_is_refused_before_sending(kling, against, argv) -> None:
    """It once failed after the task ran and the video was saved: its path could not be
    recorded in the journal (exit 1). Now it is refused before anything is paid for."""
    result = kling(*argv)
    assert result.exit_code == 2, result.stderr
    assert "error: -o y\\xff" in result.stderr and "not valid UTF-8" in result.stderr
    assert "hint: kling records each saved video's path in its journal" in result.stderr
    assert against.log == [] and os.listdir(".") == []


def test_a_batch_output_folder_that_is_not_utf8_is_refused_before_sending(
    kling, against, tmp_path
) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"prompt": "a fox"}\n')
    result = kling("batch", str(lines), "-o", "out\udcff")
    assert result.exit_code == 2, result.stderr
    assert "error: -o out\\xff/: the text is not valid UTF-8" in result.stderr  # a folder
    assert against.log == [] and os.listdir(".") == []


def test_gallery_shows_a_video_whose_name_is_not_utf8(kling, tmp_path) -> None:
    """A name of Latin-1 bytes is a file like any other: the page shows it escaped, and its
    link carries the bytes themselves, percent-encoded."""
    folder = tmp_path / "videos"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/b\xe9.mp4", "wb") as video:
        video.write(b"\0" * 10)
    result = kling("gallery", str(folder))
    assert result.exit_code == 0, result.stderr
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert 'src="b%E9.mp4"' in page and '<a href="b%E9.mp4">b\\xe9.mp4</a>' in page


def test_a_config_value_that_is_not_utf8_is_refused(kling, isolated) -> None:
    """It once failed writing the config file (exit 1); the variable's value is checked alike."""
    result = kling("config", "set", "model", "m\udcff")
    assert result.exit_code == 2, result.stderr
    assert "error: model from the command line: the text is not valid UTF-8" in result.stderr
    assert not (isolated / "config.toml").exists()
    result = kling("config", "get", "model", env={"KLING_MODEL": "m\udcff"})
    assert result.exit_code == 2 and "model from KLING_MODEL: the text is not" in result.stderr


@pytest.mark.parametrize("option", ["--set", "--metadata"])
def test_a_field_name_that_is_not_utf8_is_refused_before_sending(kling, against, option) -> None:
    """A --set name once passed the checks (only values were) and failed in the journal."""
    result = kling("generate", "a fox", option, "k\udcff=1")
    assert result.exit_code == 2, result.stderr
    assert "the text is not valid UTF-8" in result.stderr and "internal" not in result.stderr
    assert against.log == []
