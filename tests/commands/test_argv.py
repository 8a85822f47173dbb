"""The first level of command tests (STYLE.md 11): argv -> the options the run function gets,
with the run function replaced (nothing is sent, read or saved). What each run function does
with its options is the second level (test_status_run.py) and the tests against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kling_cli import batch
from kling_cli.commands import (
    balance,
    doctor,
    download,
    generate,
    status,
    upload,
    wait,
)
from kling_cli.commands import batch as batch_cmd
from kling_cli.commands import config as config_cmd
from kling_cli.commands import list as list_cmd
from kling_cli.env import Env
from kling_cli.output import Format


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Every command's run function replaced: each call recorded (without its Env), exit 3."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    for module, name in [
        (generate, "run_generate"), (wait, "run_wait"), (status, "run_status"),
        (download, "run_download"), (upload, "run_upload"), (list_cmd, "run_list"),
        (batch_cmd, "run_batch"), (balance, "run_balance"), (doctor, "run_doctor"),
        (config_cmd, "run_set"),
    ]:  # fmt: skip

        def fake(env: Env, *args: Any, name: str = name) -> int:
            assert isinstance(env, Env)
            seen.append((name, args))
            return 3  # the run function's code is the exit code

        monkeypatch.setattr(module, name, fake)
    return seen


def parsed(kling, calls, *argv: str, **kw: Any) -> tuple[str, tuple[Any, ...]]:
    result = kling(*argv, **kw)
    assert result.exit_code == 3, result.stdout + result.stderr
    ((call),) = calls
    calls.clear()
    return call


def test_generate_every_option(kling, calls) -> None:
    name, (opts,) = parsed(
        kling, calls, "generate", "a fox", "-i", "a.png", "--image", "b.png", "--ref", "c.png",
        "--first-frame", "f.png", "--end-frame", "e.png", "--video", "https://v/1.mp4",
        "--video-refer", "base", "--keep-sound", "--element", "7", "--element", "hero=h.png",
        "--no-audio", "--watermark", "--business-id", "order-1", "--mode", "pro",
        "--duration", "10", "--aspect-ratio", "9:16", "--model", "m2", "--metadata", "a=1",
        "--set", "b=2", "--wait", "--timeout", "60", "--interval", "2.5", "-o", "out/",
        "--force", "--dry-run", "--json",
    )  # fmt: skip
    assert name == "run_generate"
    assert opts == generate.GenerateOptions(
        prompt="a fox", images=["a.png", "b.png"], refs=["c.png"], first_frame="f.png",
        end_frame="e.png", videos=["https://v/1.mp4"], video_refer="base", keep_sound=True,
        elements=["7", "hero=h.png"], audio=False, watermark=True, business_id="order-1",
        mode="pro", duration=10, aspect_ratio="9:16", model="m2",
        metadata=["a=1"], sets=["b=2"], wait=True, timeout=60.0, interval=2.5, output="out/",
        force=True, dry_run=True, format=Format.JSON,
    )  # fmt: skip


def test_generate_defaults_and_quiet(kling, calls) -> None:
    _, (opts,) = parsed(kling, calls, "generate", "-q", "--", "-a prompt like an option")
    assert opts == generate.GenerateOptions(prompt="-a prompt like an option", format=Format.QUIET)


def test_wait_keeps_each_id_once_in_order(kling, calls) -> None:
    _, (opts,) = parsed(
        kling, calls, "wait", "b", "a", "b", "-o", "videos/", "--force", "--timeout", "9",
        "--interval", "1", "--parallel", "2", "-q",
    )  # fmt: skip
    assert opts == wait.WaitOptions(["b", "a"], "videos/", True, 9.0, 1.0, Format.QUIET, 2)
    _, (opts,) = parsed(kling, calls, "wait", "a")
    assert opts == wait.WaitOptions(["a"], None, False, None, None, Format.HUMAN, 4)


def test_status_download_upload_list_balance_doctor(kling, calls) -> None:
    assert parsed(kling, calls, "status", "a", "b", "--json") == (
        "run_status",
        (status.StatusOptions(["a", "b"], Format.JSON),),
    )
    assert parsed(kling, calls, "download", "a", "-o", "x.mp4", "--force", "-q") == (
        "run_download",
        (download.DownloadOptions(["a"], "x.mp4", True, Format.QUIET, 4),),
    )
    assert parsed(kling, calls, "upload", "a.png", "https://h/b.png") == (
        "run_upload",
        (upload.UploadOptions(["a.png", "https://h/b.png"], Format.HUMAN),),
    )
    assert parsed(kling, calls, "list", "-n", "3", "-q") == (
        "run_list",
        (list_cmd.ListOptions(3, Format.QUIET),),
    )
    assert parsed(kling, calls, "list") == ("run_list", (list_cmd.ListOptions(None, Format.HUMAN),))
    assert parsed(kling, calls, "list", "--refresh") == (
        "run_list",
        (list_cmd.ListOptions(None, Format.HUMAN, refresh=True),),
    )
    assert parsed(kling, calls, "balance", "--json") == (
        "run_balance",
        (balance.BalanceOptions(Format.JSON),),
    )
    assert parsed(kling, calls, "doctor", "--json") == ("run_doctor", (Format.JSON,))


def test_batch_options_and_the_configured_waits(kling, calls) -> None:
    _, (opts,) = parsed(
        kling, calls, "batch", "in.jsonl", "-p", "8", "-o", "videos", "--sidecar", "--restart",
        "--force", "--timeout", "30", "--interval", "0.5", "--json",
    )  # fmt: skip
    run = batch.Options(
        parallel=8, output=Path("videos"), sidecar=True, restart=True, force=True, timeout=30.0,
        interval=0.5,
    )  # fmt: skip
    assert opts == batch_cmd.BatchOptions("in.jsonl", Format.JSON, run)
    # without the flags: the settings' timeout and poll interval (here from the environment)
    env = {"KLING_TIMEOUT": "99", "KLING_POLL_INTERVAL": "3"}
    _, (opts,) = parsed(kling, calls, "batch", "-", env=env)
    assert opts == batch_cmd.BatchOptions("-", Format.HUMAN, batch.Options(timeout=99, interval=3))


def test_config_set_value_or_none_and_a_negative_number(kling, calls) -> None:
    assert parsed(kling, calls, "config", "set", "mode", "pro") == ("run_set", ("mode", "pro"))
    assert parsed(kling, calls, "config", "set", "api_key") == ("run_set", ("api_key", None))
    assert parsed(kling, calls, "config", "set", "timeout", "-1") == ("run_set", ("timeout", "-1"))
