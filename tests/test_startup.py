"""Start-up stays light: help and version import none of the heavy modules (issue 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from pathlib import Path
sys.argv = ["kling", *sys.argv[1:]]
from kling_cli.main import main
try:
    main()
except SystemExit:
    pass
heavy = ("requests", "urllib3", "rich", "rich.progress", "platformdirs", "sqlite3", "tomlkit")
print(" ".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["generate", "--help"], ["wait", "--help"]]
)
def test_no_heavy_imports(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stderr.strip().splitlines()[-1:] in ([], [""])
    assert result.stdout


def test_version_does_not_import_typer() -> None:
    probe = PROBE.replace("heavy = (", 'heavy = ("typer", ')
    result = subprocess.run(
        [sys.executable, "-c", probe, "--version"], capture_output=True, text=True, timeout=60
    )
    assert "typer" not in result.stderr


def test_a_tab_on_a_task_id_imports_neither_typer_rich_nor_requests(tmp_path: Path) -> None:
    """`kling __complete-ids PREFIX`: what the scripts in completions/ run for a TAB on the
    task ids of wait, status and download. Nor the journal's module (its records), json or
    typing, which a TAB never needs (store/ids.py answers it)."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(tmp_path / JOURNAL_FILE)
    journal.record_submitted(TaskView.of({"id": "video_abc", "status": "queued"}), "u", {})
    journal.close()
    heavy = (
        '("typer", "click", "rich", "requests", "urllib3", "kling_cli.store.journal", "json",'
        ' "typing")'
    )
    probe = PROBE.replace(PROBE.split("heavy = ", 1)[1].split("\n", 1)[0], heavy)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "_KLING_"))},
        "KLING_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe, "__complete-ids", "video_"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.stdout == "video_abc\tqueued\n"
    assert result.stderr.strip() == ""


def test_status_imports_neither_the_engine_nor_the_config_commands(tmp_path: Path) -> None:
    """`kling status ID` is one GET: it pays for typer and requests, not for what `wait`,
    `config` or a live display need."""
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    heavy = (
        '("kling_cli.engine.scheduler", "concurrent.futures", "kling_cli.commands.config", "rich")'
    )
    probe = PROBE.replace(PROBE.split("heavy = ", 1)[1].split("\n", 1)[0], heavy)
    with Sandbox(config=SandboxConfig()) as sb:
        task_id = sb.state.create_task({"model": "kling-v3-omni", "prompt": "a fox"})["id"]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "_KLING_"))},
            "KLING_HOME": str(tmp_path),
            "KLING_BASE_URL": sb.base_url,
            "KLING_API_KEY": "k",
        }
        result = subprocess.run(
            [sys.executable, "-c", probe, "status", task_id],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert task_id in result.stdout
    assert result.stderr.strip() == ""
