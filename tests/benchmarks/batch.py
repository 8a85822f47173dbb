"""The batch rows: 1,000 lines as a user's run would go (5 s tasks), and how batch scales
(CPU per line at 1,000 and 10,000 lines, peak memory at 100,000) with the sandbox's tasks
made near-instant, so that kling's own work is what is measured."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .measure import MiB, Run, run

if TYPE_CHECKING:
    from kling_cli.sandbox.server import Sandbox

    from .__main__ import Bench

BATCH_LINES = 1000
SCALE_LINES = (1_000, 10_000)  # CPU per line: the second within 1.3x of the first
MEMORY_LINES = 100_000  # peak RSS <= 100 MiB
FAST_QUEUE, FAST_RUN = 0.0, 0.05  # seconds: a task completes by its first poll
POLL_EVERY = "0.2"


@contextmanager
def sandbox(queue: float, run_: float) -> Iterator[Sandbox]:
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    config = SandboxConfig(queue_seconds=queue, run_seconds=run_, unlimited=True, log_size=100)
    sb = Sandbox(config=config).start()
    try:
        yield sb
    finally:
        sb.stop()


def write_lines(path: Path, count: int) -> Path:
    with path.open("w") as fh:
        for n in range(count):
            fh.write(json.dumps({"prompt": f"scene {n}: a red fox running through snow"}) + "\n")
    return path


def run_batch(b: Bench, sb: Sandbox, lines: int, *args: str, timeout: float = 3600) -> Run:
    """`kling batch` of `lines` lines into a fresh folder, with a fresh journal."""
    from .__main__ import checked

    name = f"batch-{lines}-{os.urandom(3).hex()}"
    home, out = b.work / f"{name}-home", b.work / f"{name}-out"
    source = write_lines(b.work / f"{name}.jsonl", lines)
    env = {**b.env, "KLING_BASE_URL": sb.base_url, "KLING_HOME": str(home)}
    argv = b.kling_argv("--no-progress", "batch", str(source), "-o", str(out), "-q", *args)
    try:
        return checked(run(argv, env, memory=True, cwd=b.work, timeout=timeout), "kling batch")
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        source.unlink()


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


def batch_row(b: Bench) -> None:
    """1,000 lines of 5 s tasks, -p 8, with downloads: wall time, requests, peak memory."""
    from .__main__ import Row, verdict

    with sandbox(1.0, 4.0) as sb:
        r = run_batch(b, sb, BATCH_LINES, "-p", "8")
        counts = sb.request_counts
    sends = sum(n for what, n in counts.items() if what.startswith("POST"))
    polls = sum(n for what, n in counts.items() if what.startswith("GET /v1/"))
    total = sum(counts.values())
    peak = r.max_rss or 0
    b.add(
        Row(
            f"batch of {BATCH_LINES:,} lines (sandbox, 5 s tasks, -p 8, -o DIR)",
            f"{r.wall:.1f} s, CPU {r.cpu:.1f} s, peak {mib(peak)}",
            "",
            f"{total} requests: {sends} sends, {polls} polls, {total - sends - polls} downloads",
            "peak <= 80 MiB; report wall time, requests",
            verdict(peak <= 80 * MiB),
        )
    )


def scale_rows(b: Bench, memory_lines: int = MEMORY_LINES) -> None:
    """CPU per line at 1,000 and 10,000 lines (near-instant tasks: send, one poll, download
    each), and peak memory at `memory_lines`."""
    from .__main__ import Row, verdict

    with sandbox(FAST_QUEUE, FAST_RUN) as sb:
        args = ("-p", "8", "--interval", POLL_EVERY)
        small, large = (run_batch(b, sb, n, *args) for n in SCALE_LINES)
        per_line = [r.cpu / n * 1000 for r, n in zip((small, large), SCALE_LINES, strict=True)]
        ratio = per_line[1] / per_line[0]
        b.add(
            Row(
                f"batch CPU per line, {SCALE_LINES[1]:,} lines (instant tasks, -p 8)",
                f"{per_line[1]:.2f} ms/line ({large.wall:.0f} s, CPU {large.cpu:.1f} s, "
                f"peak {mib(large.max_rss or 0)})",
                f"{SCALE_LINES[0]:,} lines: {per_line[0]:.2f} ms/line ({small.wall:.0f} s, "
                f"peak {mib(small.max_rss or 0)})",
                f"{ratio:.2f}x",
                "<= 1.3x",
                verdict(ratio <= 1.3),
            )
        )
        if not memory_lines:
            return
        print(f"  batch of {memory_lines:,} lines: this takes a while", file=sys.stderr)
        big = run_batch(b, sb, memory_lines, *args)
        peak = big.max_rss
        b.add(
            Row(
                f"batch peak memory, {memory_lines:,} lines (instant tasks, -p 8)",
                mib(peak) if peak is not None else "n/a",
                f"{big.wall:.0f} s, CPU {big.cpu:.1f} s "
                f"({big.cpu / memory_lines * 1000:.2f} ms/line)",
                mib(peak) if peak is not None else "not measurable here",
                "<= 100 MiB",
                "SKIP" if peak is None else verdict(peak <= 100 * MiB),
            )
        )
