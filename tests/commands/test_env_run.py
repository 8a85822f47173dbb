"""The run-wide choices (Env.for_run) and stdin (Ui.read_stdin), each decided in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from kling_cli.commands.config import run_set
from kling_cli.commands.generate import read_prompt
from kling_cli.env import Env
from kling_cli.errors import UsageError


@pytest.mark.parametrize(
    ("environ", "options", "expected"),
    [
        ({}, {}, (None, False, "auto")),
        ({"KLING_PROFILE": "work", "KLING_SANDBOX": "1", "KLING_PROGRESS": " JSON "}, {},
         ("work", True, "json")),
        ({"KLING_PROFILE": "work", "KLING_SANDBOX": "0", "KLING_PROGRESS": "plain"},
         {"profile": "home", "sandbox": True, "progress": "off"}, ("home", True, "off")),
        ({"KLING_SANDBOX": "false"}, {}, (None, False, "auto")),
    ],
)  # fmt: skip
def test_global_options_beat_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], options: dict, expected: tuple
) -> None:
    for name in ("KLING_PROFILE", "KLING_SANDBOX", "KLING_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    env = Env.for_run(**options)
    assert (env.profile, env.use_sandbox, env.ui.progress) == expected


def test_an_unknown_progress_mode_names_where_it_came_from(kling, against) -> None:
    result = kling("--progress", "fancy", "list")
    assert result.exit_code == 2
    assert "--progress must be one of auto, live, plain, json, off" in result.stderr
    result = kling("list", env={"KLING_PROGRESS": "fancy"})
    assert result.exit_code == 2
    assert "KLING_PROGRESS must be one of" in result.stderr


def test_a_prompt_of_dash_reads_stdin_as_utf8() -> None:
    assert read_prompt(Env.test(stdin="  a café at dawn\n".encode()), "-") == "a café at dawn"
    assert read_prompt(Env.test(), "a fox") == "a fox"  # stdin is never touched
    with pytest.raises(UsageError, match="nothing is piped"):
        read_prompt(Env.test(), "-")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        read_prompt(Env.test(stdin=b"caf\xe9 au lait"), "-")


def test_a_key_from_stdin_is_one_line_and_must_be_utf8(tmp_path: Path) -> None:
    environ = {"KLING_HOME": str(tmp_path)}
    env = Env.test(environ, stdin=b"sk-from-a-pipe-0123456789\nsecond line\n")
    assert run_set(env, "api_key", None) == 0
    assert "sk-from-a-pipe" not in env.ui.stderr.getvalue()  # masked
    assert "sk-from-a-pipe-0123456789" in (tmp_path / "config.toml").read_text()
    assert "second line" not in (tmp_path / "config.toml").read_text()
    with pytest.raises(UsageError, match="api_key on stdin is not UTF-8 text"):
        run_set(Env.test(environ, stdin=b"sk-\xff\xfe\n"), "api_key", None)
