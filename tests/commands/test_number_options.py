"""Numbers a user types: nan and infinities are refused wherever a number is read (issue 12.7).

`nan` passes every `>=` check: `--interval nan` used to poll in a tight loop and `--timeout nan`
meant "no timeout". Every case here is refused before anything is sent.
"""

from __future__ import annotations

import pytest

NOT_FINITE = ["nan", "NaN", "inf", "-inf", "1e999"]
# Every float option of every command, with what the command needs to get as far as waiting.
NUMBER_OPTIONS = [
    ("wait", "--interval", "task_1"),
    ("wait", "--timeout", "task_1"),
    ("wait", "--stall-timeout", "task_1"),
    ("generate", "--interval", "a fox"),
    ("generate", "--timeout", "a fox"),
    ("generate", "--stall-timeout", "a fox"),
    ("batch", "--interval", "jobs.jsonl"),
    ("batch", "--timeout", "jobs.jsonl"),
    ("batch", "--stall-timeout", "jobs.jsonl"),
    ("sandbox", "--queue-seconds", None),
    ("sandbox", "--run-seconds", None),
    ("sandbox", "--faults", None),
]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize(("command", "option", "arg"), NUMBER_OPTIONS)
def test_a_number_option_refuses_nan_and_infinities(
    kling, against, command: str, option: str, arg: str | None, value: str
) -> None:
    args = [command, *([arg] if arg else []), option, value]
    if command == "generate":
        args += ["--wait"]
    result = kling(*args)
    assert result.exit_code == 2, result.stderr
    assert f"kling: error: invalid value for '{option}'" in result.stderr
    assert "not a finite number" in result.stderr
    assert against.tasks_created == 0, "nothing is sent"


def test_a_finite_number_still_works_and_the_range_still_holds(kling, against) -> None:
    result = kling("wait", "task_1", "--interval", "0.01")
    assert result.exit_code == 2
    assert "0.01 is not in the range x>=0.05" in result.stderr
    result = kling("generate", "a fox", "--wait", "--interval", "0.1", "--timeout", "1e3", "-q")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("name", ["KLING_TIMEOUT", "KLING_POLL_INTERVAL", "KLING_STALL_TIMEOUT"])
@pytest.mark.parametrize("value", NOT_FINITE)
def test_the_environment_refuses_nan_and_infinities(kling, against, name: str, value: str) -> None:
    result = kling("generate", "a fox", "--wait", env={name: value})
    assert result.exit_code == 2
    assert f"from {name}: must be a finite number of seconds" in result.stderr
    assert against.tasks_created == 0


@pytest.mark.parametrize("key", ["timeout", "poll_interval", "stall_timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_the_config_file_refuses_nan_and_infinities(
    kling, against, isolated, key: str, value: str
) -> None:
    isolated.mkdir(parents=True, exist_ok=True)
    (isolated / "config.toml").write_text(f"{key} = {value}\n")  # TOML's own nan and inf
    (isolated / "config.toml").chmod(0o600)
    result = kling("generate", "a fox", "--wait")
    assert result.exit_code == 2
    assert f"{key} from the config file: must be a finite number of seconds" in result.stderr
    assert against.tasks_created == 0
    result = kling("config", "set", "--", key, value)
    assert result.exit_code == 2
    assert "must be a finite number of seconds" in result.stderr


def test_a_configured_poll_interval_has_the_flags_floor(kling, against) -> None:
    """KLING_POLL_INTERVAL=0.001 would poll in a tight loop as --interval 0.001 cannot."""
    result = kling("generate", "a fox", "--wait", env={"KLING_POLL_INTERVAL": "0.001"})
    assert result.exit_code == 2
    assert "poll_interval from KLING_POLL_INTERVAL: must be at least 0.05 seconds" in result.stderr
    assert against.tasks_created == 0
