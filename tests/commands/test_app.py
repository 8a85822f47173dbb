"""The entry point itself: version, help, python -m, Ctrl-C, internal errors, stdout hygiene."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kling_cli import __version__


def run_module(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, **kw,
    )  # fmt: skip


def test_version_via_python_m() -> None:
    result = run_module("--version")
    assert (result.returncode, result.stdout) == (0, f"kling {__version__}\n")


def test_help_lists_commands_in_the_order_a_user_meets_them(kling) -> None:
    result = kling("--help")
    assert result.exit_code == 0
    listed = [
        line.split()[0]
        for line in result.stdout.split("Commands:")[1].splitlines()
        if line.strip() and not line.startswith("   ")  # not a wrapped summary's next line
    ]
    assert listed == [
        "generate",
        "wait",
        "status",
        "download",
        "upload",
        "list",
        "batch",
        "gallery",
        "balance",
        "config",
        "sandbox",
        "doctor",
    ]


@pytest.mark.parametrize(
    "command", ["generate", "status", "wait", "download", "upload", "list", "sandbox", "doctor"]
)
def test_every_command_has_help_with_examples(kling, command: str) -> None:
    result = kling(command, "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout


def test_unknown_command_suggests(kling) -> None:
    result = kling("genrate", "x")
    assert result.exit_code == 2 and "generate" in result.stderr and result.stdout == ""


def test_unknown_option_exits_2(kling) -> None:
    assert kling("generate", "x", "--mod", "pro").exit_code == 2


def test_internal_error_is_one_line_exit_1(kling, monkeypatch: pytest.MonkeyPatch) -> None:
    from kling_cli.commands import status

    def boom(env, opts):
        raise RuntimeError("a bug")

    monkeypatch.setattr(status, "run_status", boom)
    result = kling("status", "x")
    assert result.exit_code == 1
    assert "internal error" in result.stderr and "Traceback" not in result.stderr
    verbose = kling("--verbose", "status", "x")
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_ctrl_c_during_wait_exits_130_with_resume_command(sandbox, isolated) -> None:
    env = {"KLING_BASE_URL": sandbox.base_url, "KLING_API_KEY": "k" * 20}
    task_id = run_module("generate", "[slow] a fox", "-q", env=env).stdout.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "wait", task_id, "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **env},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(r.path.endswith(task_id) for r in sandbox.log):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert f"kling wait {task_id}" in err and "Traceback" not in err
    assert out == ""


def test_the_resume_hint_resumes_the_whole_job_with_its_output(sandbox, isolated) -> None:
    env = {"KLING_BASE_URL": sandbox.base_url, "KLING_API_KEY": "k" * 20}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "generate", "[slow] a fox", "-o", "slow clip.mp4",
         "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(r.method == "GET" and "/generations/" in r.path for r in sandbox.log):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert len([r for r in sandbox.log if r.method == "POST"]) == 1
    task_id = sandbox.state.all_tasks()[0].id
    assert f"resume with: kling wait {task_id} -o 'slow clip.mp4'" in err


def test_a_timeout_hint_keeps_the_output_folder(kling, against) -> None:
    task_id = kling("generate", "[slow] a fox", "-q").stdout.strip()
    result = kling("wait", task_id, "-o", "videos/", "--timeout", "0.2", "--interval", "0.1")
    assert result.exit_code == 7
    assert f"wait for it with: kling wait {task_id} -o videos/" in result.stderr


def test_verbose_trace_never_shows_the_key(kling, against) -> None:
    result = kling("--verbose", "generate", "a fox", "-q")
    assert result.exit_code == 0
    assert "POST" in result.stderr and "<redacted>" in result.stderr
    assert "sk-test-0123456789abcdef" not in result.stderr + result.stdout


def test_sandbox_environment_variable(kling) -> None:
    result = kling("generate", "a fox", "-q", env={"KLING_SANDBOX": "1"})
    assert result.exit_code == 0 and result.stdout.startswith("video_")


def test_json_errors_are_json_documents_on_stderr(kling, against) -> None:
    import json

    result = kling("status", "video_NOPE", "--json")
    assert result.exit_code == 4 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["exit_code"] == 4 and error["task_id"] == "video_NOPE"
    assert "not found" in error["message"]
    usage = kling("generate", "a fox", "--mode", "ultra", "--json")
    assert usage.exit_code == 2
    assert json.loads(usage.stderr)["error"]["type"] == "usage"


def test_generate_help_groups_its_options(kling) -> None:
    text = kling("generate", "--help").stdout
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    for title in ("Arguments:", "Request:", "Waiting:", "Saving:", "Output:"):
        assert title in sections
    request = text.split("Request:")[1].split("\n\n")[0]
    assert "--mode" in request and "--json" not in request


def test_json_runs_get_json_usage_errors_too(kling) -> None:
    import json

    result = kling("generate", "a fox", "--json", "--duration", "abc")
    assert result.exit_code == 2 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error == {
        "type": "usage",
        "message": error["message"],
        "exit_code": 2,
        "hint": "see: kling generate --help",
    }
    assert "--duration" in error["message"]
    assert kling("status", "--bogus").stderr.startswith("kling: error: ")  # prose without --json


USAGE_ERRORS = {
    "missing argument": (["generate"], "missing argument 'PROMPT'", "kling generate"),
    "bad option value": (
        ["generate", "a fox", "--duration", "abc"],
        "invalid value for '--duration': 'abc' is not a valid int",
        "kling generate",
    ),
    "no such option": (
        ["generate", "a fox", "--bogus"],
        "no such option: --bogus",
        "kling generate",
    ),
    "option without its value": (
        ["generate", "a fox", "--mode"],
        "option '--mode' requires an argument",
        "kling generate",
    ),
    "no such command": (["nosuch"], "no such command 'nosuch'", "kling"),
    "no such root option": (["--frobnicate", "list"], "no such option: --frobnicate", "kling"),
    "a value out of range": (
        ["list", "-n", "0"],
        "invalid value for '--limit' / '-n': 0 is not in the range x>=1",
        "kling list",
    ),
    "config's own": (["config", "set"], "missing argument 'KEY'", "kling config set"),
    "no such config command": (["config", "bogus"], "no such command 'bogus'", "kling config"),
}


@pytest.mark.parametrize("args, message, command", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_every_usage_error_is_in_one_style(kling, args, message, command) -> None:
    """The parser's errors read as ours do (`kling --sandbox generate --bogus` too): one
    error line and a hint with the help to read, exit 2; no click `Usage:`/`Error:` block."""
    result = kling("--sandbox", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"kling: error: {message}",
        f"kling: hint: see: {command} --help",
    ]


def test_usage_lines_name_arguments_plainly(kling) -> None:
    usage = {
        args: kling(*args.split(), "--help").stdout.splitlines()[0]
        for args in ("generate", "wait", "batch", "upload", "list", "config set", "config get")
    }
    assert usage == {
        "generate": "Usage: kling generate [OPTIONS] PROMPT",
        "wait": "Usage: kling wait [OPTIONS] TASK_ID...",
        "batch": "Usage: kling batch [OPTIONS] FILE",
        "upload": "Usage: kling upload [OPTIONS] FILE...",
        "list": "Usage: kling list [OPTIONS]",
        "config set": "Usage: kling config set [OPTIONS] KEY [VALUE]",
        "config get": "Usage: kling config get [OPTIONS] KEY",
    }


def test_help_summaries_match_the_commands_docstrings() -> None:
    import importlib
    import inspect

    from kling_cli.app import LAZY_COMMANDS, LAZY_GROUPS

    for name, summary in LAZY_COMMANDS.items():
        module = importlib.import_module(f"kling_cli.commands.{name}")
        assert inspect.getdoc(module.command).splitlines()[0] == summary, name
    for name, summary in LAZY_GROUPS.items():
        module = importlib.import_module(f"kling_cli.commands.{name}")
        assert module.app.info.help == summary, name


# --- a reader that stops early (issue 12, item 4) -------------------------------------------


def _journal_with_rows(home, count: int) -> None:
    """`count` tasks in the journal at KLING_HOME, written in one transaction (fast)."""
    import time

    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(home / JOURNAL_FILE)
    journal.conn.executemany(
        "INSERT INTO tasks (id, submitted_at, updated_at, base_url, params, status)"
        " VALUES (?, ?, ?, 'https://api', '{}', 'completed')",
        [(f"video_{n:05d}", time.time() + n, time.time()) for n in range(count)],
    )
    journal.close()


@pytest.mark.slow
@pytest.mark.parametrize("output", [[], ["-q"], ["--json"]])
def test_a_reader_that_stops_early_ends_kling_quietly(isolated, output: list[str]) -> None:
    """`kling list -q | head -1`: no message, the status of SIGPIPE (141), as `seq` gives."""
    _journal_with_rows(isolated, 20_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "list", "-n", "100000", *output],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert b"video_19999" in proc.stdout.readline()  # newest first
    proc.stdout.close()  # what `head -1` does once it has its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_a_closed_pipe_after_saving_leaves_the_file_whole(live_sandbox, isolated, tmp_path) -> None:
    env = {**os.environ, "KLING_BASE_URL": live_sandbox.base_url, "KLING_API_KEY": "k" * 20}
    target = tmp_path / "fox.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "generate", "a fox", "-o", str(target), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the result is printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "internal error" not in err and "Traceback" not in err
    from kling_cli.sandbox.server import _clip

    assert target.read_bytes() == _clip("16:9")
    assert not list(tmp_path.glob(".*.part"))
    listed = run_module("list", "-q", env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("video_")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_disk_on_stdout_is_a_local_file_error(live_sandbox) -> None:
    """`kling list > /dev/full`: one line and exit 8 (a file that cannot be written), not an
    internal error."""
    env = {"KLING_BASE_URL": live_sandbox.base_url, "KLING_API_KEY": "k" * 20}
    made = run_module("generate", "a fox", "--wait", "-q", env=env)
    assert made.returncode == 0, made.stderr
    task_id = run_module("list", "-q", env=env).stdout.split()[0]
    for args in (["list"], ["balance"], ["status", task_id], ["download", task_id, "-o", "-"]):
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "kling_cli", *args], stdout=full, stderr=subprocess.PIPE,
                text=True, timeout=60, env={**os.environ, **env},
            )  # fmt: skip
        lines = result.stderr.splitlines()
        assert result.returncode == 8, (args, result.stderr)
        assert "kling: error: cannot write to stdout: No space left on device" in lines, args
        assert "internal error" not in result.stderr and "Exception ignored" not in result.stderr


def test_a_closed_stdout_is_a_local_file_error_and_the_task_is_kept(live_sandbox) -> None:
    """`kling generate x -q >&-`: the task is made and journaled before the answer is printed;
    the error names it, exit 8."""
    env = {**os.environ, "KLING_BASE_URL": live_sandbox.base_url, "KLING_API_KEY": "k" * 20}
    command = f"exec {sys.executable} -m kling_cli generate 'a fox' -q >&-"
    result = subprocess.run(
        ["sh", "-c", command], stderr=subprocess.PIPE, text=True, timeout=60, env=env,
        close_fds=True,
    )  # fmt: skip
    assert result.returncode == 8, result.stderr
    assert "internal error" not in result.stderr
    listed = run_module("list", "-q", env=env).stdout.split()
    assert len(listed) == 1 and live_sandbox.tasks_created == 1
    (task_id,) = listed
    assert f"kling: error: {task_id}: cannot write to stdout: it is closed" in result.stderr


# --- global options anywhere (issue 12, item 15) --------------------------------------------


def test_global_options_work_after_the_command_too(kling) -> None:
    result = kling("generate", "a fox", "-q", "--sandbox", "-v")
    assert result.exit_code == 0 and result.stdout.startswith("video_")
    assert "sandbox" in result.stderr and "POST" in result.stderr  # --sandbox and -v both took
    listed = kling("list", "-q", "--no-progress")  # (--sandbox tasks are not journaled)
    assert listed.exit_code == 0 and listed.stdout == ""
    status = kling("status", "video_x", "--profile", "nope")
    assert status.exit_code == 2 and "no profile 'nope'" in status.stderr


def test_global_options_with_values_after_the_command(kling, sandbox) -> None:
    result = kling("generate", "a fox", "--base-url", sandbox.base_url, "--api-key=" + "k" * 20)
    assert result.exit_code == 0, result.stderr
    assert sandbox.log[-1].has_auth
    status = kling("status", result.stdout.split()[0], f"--base-url={sandbox.base_url}", "-q",
                   "--api-key", "k" * 20)  # fmt: skip
    assert status.exit_code == 0 and status.stdout.strip() in ("queued", "in_progress")


def test_after_double_dash_and_as_option_values_they_stay_put(kling) -> None:
    import json

    body = json.loads(kling("generate", "--dry-run", "--", "-v").stdout)
    assert body["prompt"] == "-v"
    body = json.loads(kling("generate", "a fox", "--dry-run", "--model", "-v", "--sandbox").stdout)
    assert body["model"] == "-v"
    body = json.loads(kling("generate", "a fox", "--dry-run", "--set", "x=--sandbox").stdout)
    assert body["x"] == "--sandbox"


def test_a_commands_own_option_of_the_same_name_wins(kling, isolated) -> None:
    assert kling("config", "set", "mode", "pro", "--profile", "work").exit_code == 0
    text = (isolated / "config.toml").read_text()
    assert "[profiles.work]" in text and text.index("[profiles.work]") < text.index("pro")


# --- help (issue 12, polish) ----------------------------------------------------------------


def test_bare_kling_prints_help_on_stdout_and_exits_0(kling) -> None:
    result = kling()
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("Usage: kling") and "Commands:" in result.stdout


def test_help_shows_each_command_summary_whole(kling) -> None:
    from kling_cli.app import SUMMARIES

    text = kling("--help").stdout.split("Commands:")[1]
    flowing = " ".join(text.split())
    for summary in SUMMARIES.values():
        assert summary in flowing


@pytest.mark.parametrize(
    "command", [["list"], ["status", "video_x"], ["wait", "video_x"], ["generate", "a fox"]]
)
def test_json_and_quiet_together_are_refused(kling, command: list[str]) -> None:
    """-q with --json used to become --json silently."""
    result = kling(*command, "--json", "-q")
    assert result.exit_code == 2 and result.stdout == ""
    assert "--json and -q cannot be used together" in result.stderr
