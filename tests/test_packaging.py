"""What the sdist and the wheel hold (issue 12.19). .ci/run also installs each in a fresh venv,
runs `kling --sandbox generate` from it and runs tests from the unpacked sdist."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build")
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
COMPLETIONS = ["kling.bash", "_kling", "kling.fish", "kling.ps1"]


def build(out: Path) -> Path:
    """The sdist and the wheel, as .ci/run builds them. One build at a time: setuptools writes
    its egg-info into this checkout, so two at once break each other (one test builds)."""
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


def test_the_sdist_and_the_wheel_hold_the_tests_the_completions_and_the_license(
    tmp_path: Path,
) -> None:
    dist = build(tmp_path / "dist")
    sdist_holds_the_whole_test_suite_the_completions_and_the_license(dist)
    wheel_installs_the_completions_and_the_license(dist)


def sdist_holds_the_whole_test_suite_the_completions_and_the_license(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    expected = {"LICENSE", "README.md", "completions/generate.py"}
    expected |= {f"completions/{name}" for name in COMPLETIONS}
    expected |= {
        str(path.relative_to(REPO))
        for path in (REPO / "tests").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert {"tests/conftest.py", "tests/scripted_server.py", "tests/commands/test_app.py"} <= (
        expected
    )
    assert not expected - names, sorted(expected - names)


def wheel_installs_the_completions_and_the_license(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(name.split("/", 1)[0] for name in names if ".data/" in name)
    for name in COMPLETIONS:
        assert f"{data}/data/share/kling/completions/{name}" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert "kling_cli/sandbox/assets/clip_16x9.mp4" in names
