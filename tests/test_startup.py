"""Start-up stays light: help and version import none of the heavy modules (issue 6)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
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
