"""`SandboxConfig`: how the sandbox behaves (its defaults live in `defaults`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import faults as fk
from .defaults import IN_PROCESS, LOG_SIZE
from .prices import DEFAULT_BALANCE


@dataclass
class SandboxConfig:
    """How the sandbox behaves. Read live: a test may change `sb.config.faults` (or any field
    but `log_size`) between requests, and the next request follows it."""

    queue_seconds: float = IN_PROCESS.queue_seconds
    run_seconds: float = IN_PROCESS.run_seconds
    faults: float = 0.0
    # Seconds every answer waits before it leaves: a service far away (`kling sandbox --latency`).
    latency: float = 0.0
    fault_kinds: Iterable[str] | None = None
    seed: int | None = None
    max_running: int | None = None
    clock: Callable[[], float] = time.monotonic
    # For the Unix timestamps in answers (created_at, completed_at, expires_at).
    wall_clock: Callable[[], float] = time.time
    # The account behind every key: its balance at start (each task spends some; see
    # `prices.task_cost`), or no limit at all.
    balance: float = DEFAULT_BALANCE
    unlimited: bool = False
    # Keys the balance endpoint does not know (200 with success false); other endpoints serve them.
    unknown_keys: set[str] = field(default_factory=set)
    # Keys refused with 401 on every endpoint, as a missing key is.
    revoked_keys: set[str] = field(default_factory=set)
    # The most recent requests `Sandbox.log` keeps (read once, when the sandbox is made).
    log_size: int = LOG_SIZE

    def __post_init__(self) -> None:
        if not 0.0 <= self.faults <= 1.0:
            raise ValueError(f"faults must be within 0..1, not {self.faults}")
        if not (math.isfinite(self.latency) and self.latency >= 0):
            raise ValueError(f"latency must be 0 or more seconds, not {self.latency}")
        if not math.isfinite(self.balance):
            raise ValueError(f"balance must be a finite number, not {self.balance}")
        if isinstance(self.log_size, bool) or not isinstance(self.log_size, int):
            raise ValueError(f"log_size must be a whole number, not {self.log_size!r}")
        if self.log_size < 0:
            raise ValueError(f"log_size must be 0 or more, not {self.log_size}")
        # Sets, so a test may add keys later; a lone key is a common slip for a collection.
        self.unknown_keys = _key_set(self.unknown_keys)
        self.revoked_keys = _key_set(self.revoked_keys)
        if self.fault_kinds is not None:
            # A tuple: a generator would be used up by the first request.
            self.fault_kinds = fk.check_kinds(self.fault_kinds)


def _key_set(keys: Iterable[str] | str) -> set[str]:
    return {keys} if isinstance(keys, str) else set(keys)
