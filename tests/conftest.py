"""Every test gets its own KLING_HOME and working folder; nothing touches the user's files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from kling_cli.app import app

if TYPE_CHECKING:
    from kling_cli.sandbox.server import Sandbox


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("KLING_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("KLING_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
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
def kling(monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in-process through its entry point: kling(*args, input=..., env=...)."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def against(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Point the CLI at the running sandbox with a key, as a user's environment would."""
    monkeypatch.setenv("KLING_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("KLING_API_KEY", "sk-test-0123456789abcdef")
    return sandbox


@pytest.fixture
def stalling(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox (the CLI pointed at it) whose tasks run at once and for 0.2 s: a task moves
    at every poll until it ends, or, with `[stall]`, stands still at 99% from then on."""
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    with Sandbox(config=SandboxConfig(queue_seconds=0.0, run_seconds=0.2)) as sb:
        monkeypatch.setenv("KLING_BASE_URL", sb.base_url)
        monkeypatch.setenv("KLING_API_KEY", "sk-test-0123456789abcdef")
        yield sb


# Hypothesis: no per-example deadline (a cold first example on a busy CI machine is not a bug).
from hypothesis import settings  # noqa: E402

settings.register_profile("kling", deadline=None)
settings.load_profile("kling")
