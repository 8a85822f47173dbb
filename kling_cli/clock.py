"""The fake clock of tests, shared by a command's Env and the sandbox (real runs use time's)."""

from __future__ import annotations

import threading


class FakeClock:
    """Time for tests: `sleep` moves it forward at once, nothing else does. Shared by an Env
    (`Env.test(clock=...)`, or `CliRunner().invoke(app, args, obj=clock)`) and a sandbox
    (`SandboxConfig(clock=clock.now)`): a wait of minutes takes no time and sees the same
    task states as a real one."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()  # the sandbox reads it from its server threads
        self.slept: list[float] = []  # every sleep asked for, in order

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:  # time would never move: a loop that waits so would spin for ever
            raise ValueError(f"a sleep of {seconds} s on a fake clock")
        with self._lock:
            self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Time that passes outside a sleep: a slow answer, a test's own step."""
        with self._lock:
            self._now += seconds
