"""The sandbox's defaults, in one place: how fast a task goes, and how many requests are kept.

`SandboxConfig`, the `kling sandbox` command, `kling --sandbox` and the tests' fixtures read
them from here. No imports: the command reads its options' defaults at start-up.
"""

from __future__ import annotations

from typing import NamedTuple


class Pace(NamedTuple):
    """How long a task stays queued, then runs, in seconds (`SandboxConfig(**pace._asdict())`)."""

    queue_seconds: float
    run_seconds: float


# `SandboxConfig()`, so `kling --sandbox`: a command's own tasks end within a few seconds.
IN_PROCESS = Pace(queue_seconds=0.5, run_seconds=2.0)
# `kling sandbox`: slow enough to watch each state from another terminal.
FOREGROUND = Pace(queue_seconds=2.0, run_seconds=6.0)
# Tests: every state still shows, and a task ends within a second.
QUICK = Pace(queue_seconds=0.2, run_seconds=0.5)

# Requests kept in `Sandbox.log` (about 1 KB each), the oldest dropped first; generous, since
# tests read it. The counters (`Sandbox.request_counts`, `tasks_created`) count every request.
LOG_SIZE = 10_000
# The foreground `kling sandbox` never reads its log: a few recent requests are plenty.
FOREGROUND_LOG_SIZE = 100
