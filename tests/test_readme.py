"""Every snippet of the README's cookbook runs, against the sandbox, exactly as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def cookbook_snippets() -> list[str]:
    text = README.read_text()
    section = text.split("<!-- cookbook:start -->", 1)[1].split("<!-- cookbook:end -->", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def test_cookbook_has_snippets() -> None:
    assert len(cookbook_snippets()) >= 5


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_every_cookbook_snippet_runs(sandbox, tmp_path: Path) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    opener = stubs / "xdg-open"  # no desktop here: "opening" checks the file is a video
    opener.write_text('#!/bin/sh\nhead -c 8 "$1" | grep -q ftyp && echo "opened $1"\n')
    opener.chmod(0o755)
    work = tmp_path / "cookbook"
    work.mkdir()
    (work / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(stubs), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "KLING_HOME": str(tmp_path / "home"),
        "KLING_BASE_URL": sandbox.base_url,
        "KLING_API_KEY": "sk-cookbook-0123456789",
        "KLING_POLL_INTERVAL": "0.1",
    }
    outputs = []
    for snippet in cookbook_snippets():
        result = subprocess.run(
            ["bash", "-eu", "-c", snippet],
            cwd=work, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, f"{snippet}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout)
    assert outputs[-1] == "4\n"  # the exit code, read from the JSON error
    assert "opened " in outputs[0]
    assert (work / "waving.mp4").stat().st_size > 0
    assert len(list((work / "videos").glob("*.mp4"))) == 3
    rows = (work / "tasks.csv").read_text().splitlines()
    assert rows and all(row.startswith('"video_') for row in rows)
