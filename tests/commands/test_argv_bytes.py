"""Arguments whose bytes are not UTF-8: Python hands them over as surrogates (`\\udcff` for the
byte 0xff), which nothing can send, store or write as text. Each is refused where it comes in
(exit 2, nothing sent), or, a file name on disk, shown escaped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

NOT_UTF8 = "vid\udcff"  # what Python makes of the argument b"vid\xff"


@pytest.mark.parametrize("command", ["status", "wait", "download"])
def test_a_task_id_that_is_not_utf8_is_refused_before_sending(kling, against, command) -> None:
    result = kling(command, NOT_UTF8)
    assert result.exit_code == 2, result.stderr
    assert "error: task id vid\\xff: the text is not valid UTF-8" in result.stderr
    assert "internal error" not in result.stderr and against.log == []


def test_a_task_id_in_bytes_from_the_shell_is_refused(against) -> None:
    """The real thing: the bytes on the command line, not a string made to look like them."""
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"kling_cli", b"wait", b"ok", b"vid\xff", b"--json"],
        capture_output=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert b'"message":"task id vid\\\\xff: the text is not valid UTF-8"' in result.stderr
    assert against.log == []
