"""Running a child process and measuring it: wall time, CPU time and peak memory."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MiB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, from spawn to reaped
    cpu: float  # user + system seconds of the measured program
    max_rss: int | None  # bytes; None when it could not be measured
    code: int


def gnu_time() -> str | None:
    """GNU time, when installed (`-f %M` is the peak RSS in KiB of the program it runs)."""
    path = shutil.which("time", path="/usr/bin:/bin:/usr/local/bin")
    if path is None:
        return None
    probe = subprocess.run([path, "-f", "%M", "true"], capture_output=True, text=True)
    return path if probe.returncode == 0 and probe.stderr.strip().isdigit() else None


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    memory: bool = False,
    stdout: int | IO[bytes] = subprocess.DEVNULL,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> Run:
    """Run `argv` to completion and measure it.

    Wall and CPU times come from os.wait4 on the child itself. Peak memory cannot: on Linux the
    ru_maxrss of a child that was forked (or vforked) from this process and then exec'd also
    counts the pages it shared with this process before exec, so a child of a benchmark that
    holds 300 MiB reports 300 MiB however small it is. With `memory=True` the program is run
    under GNU time instead (a small C process, so the fork it makes is small too), which reports
    the program's own peak RSS (%M) and CPU (%U, %S) in a file. Without GNU time we fall back to
    polling /proc/PID/status for VmHWM (the high-water mark of the exec'd image only) every 5 ms
    until the process exits; the peak is then at worst a few ms stale, fine for a steady state.
    """
    time_bin = gnu_time() if memory else None
    report: Path | None = None
    if time_bin is not None:
        fd, name = tempfile.mkstemp(prefix="kling-bench-time-")
        os.close(fd)
        report = Path(name)
        argv = [time_bin, "-o", str(report), "-f", "%M %U %S", *argv]
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    poller = _HwmPoller(proc.pid) if memory and time_bin is None else None
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    max_rss: int | None = None
    if report is not None:
        fields = report.read_text().split()
        report.unlink(missing_ok=True)
        if proc.returncode == 0 or len(fields) >= 3:
            # With a failing program GNU time first writes "Command exited with status N".
            kib, user, system = fields[-3:]
            max_rss, cpu = int(kib) * 1024, float(user) + float(system)
    elif poller is not None:
        max_rss = poller.stop()
    return Run(wall, cpu, max_rss, proc.returncode)


class _HwmPoller:
    def __init__(self, pid: int):
        self.path = Path(f"/proc/{pid}/status")
        self.peak: int | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(0.005):
            try:
                text = self.path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    kib = int(line.split()[1]) * 1024
                    self.peak = max(self.peak or 0, kib)

    def stop(self) -> int | None:
        self.done.set()
        self.thread.join()
        return self.peak


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))
