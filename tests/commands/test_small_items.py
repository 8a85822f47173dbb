"""The smaller items of the issue "Used as people use it" (item 10), each through the CLI
entry point: a message or an output that said less than it should."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("balance",), "The service's answer, as it came, as JSON on stdout."),
        (("upload",), "One JSON document per file on stdout"),
        (("doctor",), "Every check in one JSON document on stdout."),
        (("config", "list"), "Every key in one JSON document on stdout."),
        (("status",), "One JSON document per task on stdout."),
    ],
)
def test_json_help_says_what_the_documents_are(kling, command: tuple[str, ...], says: str) -> None:
    """`balance --help` and `upload --help` said 'one JSON document per task'."""
    text = " ".join(kling(*command, "--help").stdout.split())
    assert f"--json {says}" in text
    if command != ("status",):
        assert "per task" not in text


def test_download_of_a_task_not_done_never_says_downloading(kling, against) -> None:
    """`download <queued id>` printed 'downloading' before saying it is not final."""
    queued = kling("generate", "a fox", "-q").stdout.strip()
    result = kling("--progress", "plain", "download", queued)
    assert result.exit_code == 7
    assert result.stderr.splitlines() == [
        f"kling: {queued} queued 0%",
        f"kling: error: task {queued} is not final yet (still queued)",
        f"kling: hint: wait for it with: kling wait {queued}",
    ]
    done = kling("generate", "a cat", "--wait", "--interval", "0.05", "-q").stdout.strip()
    done_id = done.rsplit("/", 1)[-1].removesuffix(".mp4")
    result = kling("--progress", "plain", "download", done_id, "-o", "cat.mp4")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"kling: {done_id} downloading"  # once its bytes come
    assert lines[1].startswith(f"kling: {done_id} completed saved ") and len(lines) == 2


def test_an_empty_key_on_stdin_is_blamed_on_stdin(kling, isolated) -> None:
    """`config set api_key </dev/null` blamed 'the command line'."""
    result = kling("config", "set", "api_key", input="")
    assert result.exit_code == 2
    assert result.stderr == "kling: error: api_key from stdin: must not be empty\n"
    assert not (isolated / "config.toml").exists()
    typed = kling("config", "set", "api_key", "bad key")
    assert "kling: error: api_key from the command line: has a space at position 4" in (
        typed.stderr
    )


def test_config_list_of_a_profile_says_it_is_shown(kling) -> None:
    """`--profile work config list` still said 'use one with --profile'."""
    for profile in ("work", "home"):
        assert kling("config", "set", "--profile", profile, "mode", "pro").exit_code == 0
    assert kling("config", "list").stderr == (
        "kling: profiles: home, work (use one with --profile NAME)\n"
    )
    expected = "kling: profile work shown (its keys over the top-level ones); the others: home\n"
    assert kling("--profile", "work", "config", "list").stderr == expected
    assert kling("config", "list", "--profile", "work").stderr == expected


def test_plain_http_to_a_remote_host_is_refused_when_set(kling, isolated) -> None:
    """`config set base_url http://host` was accepted, and refused only when used."""
    result = kling("config", "set", "base_url", "http://api.example.com")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "kling: error: base_url from the command line: plain http:// to api.example.com would "
        "send the API key"
    )
    assert not (isolated / "config.toml").exists()
    assert kling("config", "set", "base_url", "http://127.0.0.1:8000").exit_code == 0
    assert kling("config", "set", "base_url", "https://api.example.com").exit_code == 0


def test_choices_ignore_case(kling, against) -> None:
    """`--mode PRO` was refused."""
    import json

    result = kling("generate", "a fox", "--mode", "PRO", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["mode"] == "pro"
    video = ("--video", "https://example.com/a.mp4", "--video-refer", "Base")
    body = json.loads(kling("generate", "<<<video_1>>> in snow", *video, "--dry-run").stdout)
    assert body["video_list"][0]["refer_type"] == "base"
    assert kling("config", "set", "mode", "Pro").stderr.startswith("kling: mode = pro ")
    assert kling("config", "get", "mode").stdout == "pro\n"
    assert kling("generate", "a fox", "--mode", "ultra", "--dry-run").exit_code == 2


def test_a_commands_option_before_it_is_named_as_the_commands(kling) -> None:
    """`kling -q ...` and `kling --json status` said 'no such option' (with --json: 'Possible
    options: --version') without pointing at the command's own option."""
    import json

    result = kling("-q", "list")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "kling: error: no such option: -q (it is an option of `kling list`, and goes after it)",
        "kling: hint: put it after the command: kling list -q ...",
    ]
    error = json.loads(kling("--json", "status", "video_X").stderr)["error"]
    assert error["message"] == (
        "no such option: --json (it is an option of `kling status`, and goes after it)"
    )
    assert error["hint"] == "put it after the command: kling status --json ..."
    assert "`kling config list`" in kling("--json", "config", "list").stderr
    assert "`kling list`" in kling("-n", "5", "list").stderr
    bogus = kling("--bogus", "list").stderr  # nobody's option: as before
    assert bogus.startswith("kling: error: no such option: --bogus") and "kling list" not in bogus


def test_a_commands_option_before_a_misspelt_or_missing_command(kling) -> None:
    """`kling --json wiat` blamed --json ('Possible options: --version'), not the typo; with
    no command at all, --json read as nobody's option."""
    import json

    error = json.loads(kling("--json", "wiat", "video_X").stderr)["error"]
    assert (error["message"], error["exit_code"]) == (
        "no such command 'wiat'; did you mean 'wait'?",
        2,
    )
    result = kling("-q")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "kling: error: no such option: -q (it is an option of the commands, and goes after one)",
        "kling: hint: put it after a command: kling COMMAND -q ...",
    ]
    assert "Possible options" not in kling("--json", "nothing").stderr


def test_an_expired_video_names_its_task_and_what_to_do(kling, against) -> None:
    """The error had no task id (the URL held it, so none was added) and no hint, and -q
    still printed the dead URL."""
    result = kling("generate", "[expired] a fox", "-o", "fox.mp4", "--interval", "0.05", "-q")
    assert result.exit_code == 6
    assert result.stdout == ""
    (task_id,) = [task.id for task in against.tasks()]
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"kling: error: the video of task {task_id} has expired: the video host answered 410"
    )
    assert lines[1] == (
        "kling: hint: the service keeps a video for a limited time after the task completes; "
        "generate it again (`kling list` shows its prompt)"
    )


def test_a_heic_photo_is_named_for_what_it_is(kling, against, tmp_path) -> None:
    """A phone's `photo.heic` got 'the service takes JPEG, PNG, WebP or GIF files', which
    says nothing of what the file is or what to do."""
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0")
    for command in (("upload", str(heic)), ("generate", "a fox", "-i", str(heic))):
        result = kling(*command)
        assert result.exit_code == 2
        assert result.stderr == (
            f"kling: error: image {heic} is not a JPEG, PNG, WebP or GIF image: it looks like "
            "a HEIC image (convert it to JPEG first)\n"
        )
    named = tmp_path / "photo.bmpx"
    named.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))  # an image by its bytes: the name
    assert "named so (.gif, .jpeg, .jpg, .png, .webp)" in kling("upload", str(named)).stderr
    assert against.log == []


def test_force_color_colours_piped_stderr_and_no_color_wins(kling, against) -> None:
    """`FORCE_COLOR=1` with stderr piped gave no colour (the README says it colours stderr)."""
    coloured = kling("status", "video_NOPE", env={"FORCE_COLOR": "1"})
    assert coloured.exit_code == 4
    assert coloured.stderr.startswith("kling: \x1b[1;31merror:\x1b[0m video_NOPE: ")
    assert coloured.stdout == ""
    plain = kling("status", "video_NOPE", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.stderr.startswith("kling: error: video_NOPE: ") and "\x1b" not in plain.stderr


def test_a_timeout_longer_than_the_os_can_time_is_a_long_wait(kling, against) -> None:
    """`--timeout 1e10` (beyond threading's TIMEOUT_MAX) crashed with an OverflowError once the
    task was sent and paid for: exit 1, and no task id printed."""
    result = kling("generate", "a fox", "--wait", "-q", "--timeout", "1e10", "--interval", "0.05")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("http")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc/self/mem")
def test_an_image_that_cannot_be_read_is_exit_8_and_nothing_is_sent(
    kling, against, tmp_path
) -> None:
    """An image whose bytes cannot be read (permission denied for a user; /proc/self/mem's EIO
    here, which root cannot read either) crashed: internal error, exit 1."""
    image = tmp_path / "photo.png"
    image.symlink_to("/proc/self/mem")
    for option in ("-i", "--ref"):
        result = kling("generate", "a fox", option, str(image))
        assert result.exit_code == 8, result.stderr
        assert f"kling: error: cannot read {image}: " in result.stderr
    assert against.tasks_created == 0 and against.log == []


def test_an_empty_image_or_output_is_refused(kling, against, tmp_path) -> None:
    """`-i ""` said "image . is not a file" (a batch line's "": its folder's path), and
    `-o ""` saved the video here without a word, as an unset `-o "$DIR"` would."""
    for option in ("-i", "--ref"):
        result = kling("generate", "a fox", option, "")
        assert result.exit_code == 2
        assert "error: an image is an empty string: give a URL or a file path" in result.stderr
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"prompt": "a fox", "images": [""]}\n')
    assert "line 1: `images` must be a URL or a file path" in kling("batch", str(lines)).stderr
    for command in (("generate", "a fox", "--wait"), ("download", "video_X")):
        result = kling(*command, "-o", "")
        assert result.exit_code == 2 and "error: -o is empty" in result.stderr
    assert against.log == []
