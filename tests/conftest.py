"""Every test gets its own KLING_HOME and working folder; nothing touches the user's files."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from kling_cli.app import app
from kling_cli.clock import FakeClock

if TYPE_CHECKING:
    from kling_cli.sandbox.server import Sandbox


def pytest_configure(config: pytest.Config) -> None:
    """Started as a script's background job, pytest inherits SIGINT ignored, and so would every
    kling the tests start: their Ctrl-C tests would see no Ctrl-C. Python's own handler here
    means the default in the children (an ignored signal stays ignored across exec)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: pytest-xdist (--dist loadgroup, pyproject.toml) hands tests out
    in this order as workers come free, so no worker starts a long one near the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("KLING_") or name in ("FORCE_COLOR", "NO_COLOR"):
            monkeypatch.delenv(name)  # the caller's colour wishes would change stderr
    home = tmp_path / "home"
    monkeypatch.setenv("KLING_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.fixture
def clock() -> FakeClock:
    """The test's time: the sandbox fixture and the `kling` fixture's runs share it, so a
    command's poll interval moves the sandbox's tasks along instead of sleeping."""
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    """The sandbox on the test's fake clock: its tasks move only when this process's runs
    sleep (the `kling` fixture, Env.test(clock=clock)). To another process they stand still:
    a test whose kling subprocess must see a task finish uses `live_sandbox`."""
    from kling_cli.sandbox.defaults import QUICK
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    with Sandbox(config=SandboxConfig(**QUICK._asdict(), clock=clock.now)) as sb:
        yield sb


@pytest.fixture
def live_sandbox() -> Iterator[Sandbox]:
    """The sandbox on the real clock, for kling run as a subprocess."""
    from kling_cli.sandbox.defaults import QUICK
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    with Sandbox(config=SandboxConfig(**QUICK._asdict())) as sb:
        yield sb


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def kling(monkeypatch: pytest.MonkeyPatch, clock: FakeClock):
    """Run the CLI in-process through its entry point, on the test's fake clock:
    kling(*args, input=..., env=...)."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False, obj=clock)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def against(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Point the CLI at the running sandbox with a key, as a user's environment would."""
    monkeypatch.setenv("KLING_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("KLING_API_KEY", "sk-test-0123456789abcdef")
    return sandbox


def _stalling(monkeypatch: pytest.MonkeyPatch, clock: FakeClock | None) -> Iterator[Sandbox]:
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    pace = {"queue_seconds": 0.0, "run_seconds": 0.2}
    config = SandboxConfig(**pace, clock=clock.now) if clock else SandboxConfig(**pace)
    with Sandbox(config=config) as sb:
        monkeypatch.setenv("KLING_BASE_URL", sb.base_url)
        monkeypatch.setenv("KLING_API_KEY", "sk-test-0123456789abcdef")
        yield sb


@pytest.fixture
def stalling(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[Sandbox]:
    """A sandbox (the CLI pointed at it) on the test's fake clock, whose tasks run at once and
    for 0.2 s: a task moves at every poll until it ends, or, with `[stall]`, stands still at
    99% from then on."""
    yield from _stalling(monkeypatch, clock)


@pytest.fixture
def live_stalling(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The same on the real clock, for kling run as a subprocess."""
    yield from _stalling(monkeypatch, None)


# Hypothesis: no per-example deadline (a cold first example on a busy CI machine is not a bug).
from hypothesis import settings  # noqa: E402

settings.register_profile("kling", deadline=None)
settings.load_profile("kling")
