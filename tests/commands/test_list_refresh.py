"""kling list as people use it (issue "Used as people use it", item 7): the progress kling saw
is in the journal, `--refresh` asks the service about the rows it shows, and rows left out
are said on stderr."""

from __future__ import annotations

import json

FAST = ("--interval", "0.05")


def test_a_stalled_task_keeps_the_progress_kling_saw(kling, stalling) -> None:
    """The journal was written only when the status changed: a task seen at 99% read
    `in_progress 0%` in `kling list`."""
    result = kling("generate", "[stall] a fox", "--wait", "--stall-timeout", "0.3", *FAST)
    assert result.exit_code == 7, result.stderr
    (doc,) = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert (doc["status"], doc["progress"]) == ("in_progress", 99)
