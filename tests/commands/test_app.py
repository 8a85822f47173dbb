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
        line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()
    ]
    assert listed == [
        "generate",
        "wait",
        "status",
        "download",
        "upload",
        "list",
        "batch",
        "balance",
        "config",
        "sandbox",
    ]


@pytest.mark.parametrize(
    "command", ["generate", "status", "wait", "download", "upload", "list", "sandbox"]
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
    assert error == {"type": "usage", "message": error["message"], "exit_code": 2}
    assert "--duration" in error["message"]
    assert kling("status", "--bogus").stderr.startswith("Usage:")  # prose without --json


def test_help_summaries_match_the_commands_docstrings() -> None:
    import importlib
    import inspect

    from kling_cli.app import LAZY_COMMANDS

    for name, summary in LAZY_COMMANDS.items():
        module = importlib.import_module(f"kling_cli.commands.{name}")
        assert inspect.getdoc(module.command).splitlines()[0] == summary, name
