"""Rows for `wait` on many tasks, timed at the sandbox (issue 11):

- `rounds`: `kling wait` on 1,000 tasks at `--interval 1`, against the sandbox on loopback and
  against the same sandbox holding each answer back 50 ms (`SandboxConfig.latency`, as from a
  service far away), the two runs alternated. One round of polls (every task polled once) 50 ms
  away must take at most ROUND_GOAL seconds, well inside the shortest gap the service advises
  between polls (5 s), and the interval must hold: no task polled sooner than `--interval`
  after its last answer, nor much later.
- `saved`: `kling wait -o DIR` on several tasks that complete one after another while one task
  keeps running and another task's video downloads slowly: each fast task's file must appear
  within one poll interval of its completion at the sandbox (plus SAVED_SLACK for the poll's
  own answer and the download of the small clip).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .measure import MiB, Run, Stats, run

if TYPE_CHECKING:
    from kling_cli.sandbox.server import Sandbox

    from .__main__ import Bench

ROUND_TASKS = 1000
ROUND_LATENCY = 0.05
ROUND_INTERVAL = 1.0
ROUND_PACE = (1.0, 3.0)  # queued, running: about 4 rounds of polls
ROUND_GOAL = 2.0  # seconds for one round of polls 50 ms away

SAVED_INTERVAL = 1.0
SAVED_FAST = 4  # tasks completing one after another, a second apart
SLOW_DOWNLOAD_SECONDS = 6.0
SAVED_SLACK = 0.2  # seconds: the poll that sees it completed, and the clip's download


@contextmanager
def sandbox(latency: float = 0.0, pace: tuple[float, float] = ROUND_PACE) -> Iterator[Sandbox]:
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    config = SandboxConfig(queue_seconds=pace[0], run_seconds=pace[1], latency=latency)
    sb = Sandbox(config=config).start()
    try:
        yield sb
    finally:
        sb.stop()


def poll_times(sb: Sandbox) -> dict[str, list[float]]:
    """Task id -> the moments its GETs reached the sandbox (before any latency), as they come."""
    times: dict[str, list[float]] = {}
    log = sb.log
    append = log.append
    prefix = "/v1/videos/generations/"

    def stamped(record: Any, endpoint: str) -> None:
        now = time.monotonic()
        if record.method == "GET" and record.path.startswith(prefix):
            times.setdefault(record.path[len(prefix) :], []).append(now)
        append(record, endpoint)

    log.append = stamped  # type: ignore[method-assign]
    return times


def rounds(times: dict[str, list[float]]) -> list[float]:
    """The length of each round every task took part in: first to last of its k-th polls."""
    full = min(len(t) for t in times.values())
    return [
        max(t[k] for t in times.values()) - min(t[k] for t in times.values()) for k in range(full)
    ]


def gaps(times: dict[str, list[float]]) -> list[float]:
    return [b - a for t in times.values() for a, b in itertools.pairwise(t)]


def one_wait(b: Bench, latency: float) -> tuple[list[float], list[float], Run]:
    """`kling wait` on ROUND_TASKS fresh tasks: its rounds, its gaps, the run."""
    with sandbox(latency) as sb:
        times = poll_times(sb)
        ids = [
            sb.state.create_task({"model": "kling-v3-omni", "prompt": f"round {i}"})["id"]
            for i in range(ROUND_TASKS)
        ]
        env = {**b.env, "KLING_BASE_URL": sb.base_url}
        argv = b.kling_argv("--no-progress", "wait", *ids, "--interval", f"{ROUND_INTERVAL:g}")
        r = run(argv, env, memory=True, cwd=b.work, timeout=600)
        if r.code != 0:
            raise SystemExit(f"benchmark: kling wait exited {r.code}")
        return rounds(times), gaps(times), r


def rounds_rows(b: Bench) -> None:
    from .__main__ import Row, verdict

    tries = 1 if b.runs <= 5 else 2
    loop_rounds: list[float] = []
    far_rounds: list[float] = []
    far_gaps: list[float] = []
    far_runs: list[Run] = []
    for _ in range(tries):  # alternated, so that the machine's load hits both alike
        loop_rounds += one_wait(b, 0.0)[0]
        r, g, process = one_wait(b, ROUND_LATENCY)
        far_rounds += r
        far_gaps += g
        far_runs.append(process)
    peak = max(x.max_rss or 0 for x in far_runs)
    cpu = Stats.of([x.cpu for x in far_runs])
    far, near = Stats.of(far_rounds), Stats.of(loop_rounds)
    ratio = far.median / near.median
    b.add(
        Row(
            f"wait on {ROUND_TASKS:,} tasks, {ROUND_LATENCY * 1000:g} ms a request: one round",
            f"{far.median:.2f} s ({far.low:.2f}-{far.high:.2f}), {len(far_rounds)} rounds; "
            f"process: CPU {cpu.median:.2f} s, peak {peak / MiB:.1f} MiB",
            f"loopback round {near.median:.2f} s ({near.low:.2f}-{near.high:.2f})",
            f"{far.median:.2f} s ({ratio:.2f}x the loopback round)",
            f"<= {ROUND_GOAL:g} s",
            verdict(far.median <= ROUND_GOAL),
        )
    )
    ordered = sorted(far_gaps)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    median, shortest = statistics.median(ordered), ordered[0]
    b.add(
        Row(
            f"  --interval {ROUND_INTERVAL:g} held at {ROUND_TASKS:,} tasks",
            f"gap between a task's polls: median {median:.2f} s, p95 {p95:.2f} s, "
            f"min {shortest:.2f} s",
            f"{len(ordered)} gaps",
            f"p95 {p95 / ROUND_INTERVAL:.2f}x the interval",
            "min >= interval (p95: INFO, a round is longer than 1 s)",
            verdict(shortest >= ROUND_INTERVAL * 0.99),
        )
    )


# --- each video saved within an interval of its completion ---------------------------------


class _Trickle(BaseHTTPRequestHandler):
    """A video host that takes SLOW_DOWNLOAD_SECONDS to send one small file."""

    protocol_version = "HTTP/1.1"
    body = b"\0\0\0\x18ftypmp42" + b"\0" * (64 * 1024 - 12)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        steps = 20
        size = len(self.body) // steps
        for n in range(steps):
            time.sleep(SLOW_DOWNLOAD_SECONDS / steps)
            self.wfile.write(self.body[n * size : (n + 1) * size if n < steps - 1 else None])
            self.wfile.flush()


class _TrickleServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def server_bind(self) -> None:  # no reverse DNS lookup of the address
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


def saved_row(b: Bench) -> None:
    """Tasks complete at set moments (set_task), so the moment is known to the millisecond."""
    from .__main__ import Row, verdict

    out = b.work / "saved"
    trickle = _TrickleServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=trickle.serve_forever, daemon=True).start()
    # Tasks that would run for an hour: each ends when this row says so.
    with sandbox(pace=(0.0, 3600.0)) as sb:

        def task(prompt: str) -> str:
            return str(sb.state.create_task({"model": "kling-v3-omni", "prompt": prompt})["id"])

        fast = [task(f"fast {n}") for n in range(SAVED_FAST)]
        slow_run, slow_download = task("still running"), task("slow download")
        polled = poll_times(sb)

        def complete(task_id: str, url: str | None = None) -> None:
            url = url or f"{sb.file_base_url}/videos/{task_id}.mp4"
            result = {"type": "video", "data": [{"url": url}]}
            sb.set_task(task_id, status="completed", progress=100, result=result)

        appeared: dict[str, float] = {}
        done_at: dict[str, float] = {}
        stop = threading.Event()

        def look() -> None:  # the files as they appear, every 5 ms
            while not stop.wait(0.005):
                for task_id in fast:
                    if task_id not in appeared and (out / f"{task_id}.mp4").exists():
                        appeared[task_id] = time.monotonic()

        def script() -> None:  # the slow download first, then a fast task every second
            time.sleep(1.5)
            complete(slow_download, f"http://127.0.0.1:{trickle.server_port}/slow.mp4")
            for task_id in fast:
                time.sleep(1.0)
                complete(task_id)
                done_at[task_id] = time.monotonic()
            time.sleep(SLOW_DOWNLOAD_SECONDS)
            complete(slow_run)

        watcher = threading.Thread(target=look, daemon=True)
        scripter = threading.Thread(target=script, daemon=True)
        env = {**b.env, "KLING_BASE_URL": sb.base_url}
        ids = [*fast, slow_run, slow_download]
        argv = b.kling_argv(
            "--no-progress", "wait", *ids, "-o", f"{out}/", "--interval", f"{SAVED_INTERVAL:g}"
        )
        watcher.start()
        scripter.start()
        r = run(argv, env, cwd=b.work, timeout=120)
        stop.set()
        watcher.join()
        scripter.join()
    trickle.shutdown()
    trickle.server_close()
    if r.code != 0:
        raise SystemExit(f"benchmark: kling wait -o exited {r.code}")
    # From the moment the task completed, and from the first answer that said so (how long
    # the download waited: the others' work must not hold it back).
    first_completed = {
        t: min((p for p in polled.get(t, []) if p >= done_at[t]), default=float("inf"))
        for t in done_at
    }
    saved = [t for t in fast if t in appeared and t in first_completed]
    delays = [appeared[t] - done_at[t] for t in saved]
    after_answer = [appeared[t] - first_completed[t] for t in saved]
    worst = max(delays) if len(saved) == len(fast) else float("inf")
    b.add(
        Row(
            f"wait -o: {SAVED_FAST} tasks done 1 s apart, 1 running, 1 downloading "
            f"{SLOW_DOWNLOAD_SECONDS:g} s",
            f"file after completion: worst {worst:.2f} s, median "
            f"{statistics.median(delays or [worst]):.2f} s",
            f"--interval {SAVED_INTERVAL:g}; after the completed answer: worst "
            f"{max(after_answer or [worst]) * 1000:.0f} ms",
            f"{worst / SAVED_INTERVAL:.2f}x the interval",
            f"<= 1 interval (+{SAVED_SLACK:g} s)",
            verdict(worst <= SAVED_INTERVAL + SAVED_SLACK),
        )
    )


def run_rows(b: Bench, only: set[str]) -> None:
    if "rounds" in only:
        rounds_rows(b)
    if "saved" in only:
        saved_row(b)
