"""`python -m tests.benchmarks [--quick] [--only ROW,...]`: issues 6 and 11's goals, side by side.

Every row runs kling (the installed console script, as a subprocess, with its own KLING_HOME)
next to a reference in the same run, alternating them, and compares medians:

- start-up rows, and a TAB on `kling wait ` (what completions/kling.bash runs for it:
  `kling __complete-ids ''`, 50 ids from a journal of 50 tasks): `python -c pass` with the
  interpreter of kling's own script;
- `kling list -n 10000` on a pseudo-terminal: the same command piped (the goal is absolute);
- `status ID`: one GET to the sandbox (loopback, started here), against what any typer and
  requests tool pays: `python -c "import typer, requests"` plus 3x `python -c pass`;
- the download: a 512 MiB file from a static file server (stdlib ThreadingHTTPServer using
  sendfile, Content-Length set). The whole `kling download` process against
  `curl -s -o FILE && sync FILE` (the same durability: kling fsyncs before its rename), and
  kling's transfer loop alone (download() called in a small harness, timed around the call,
  without the final fsync) against `curl -s -o FILE`; kling's peak memory (RSS) meanwhile;
- `wait` on 200 tasks at once: requests and TCP connections the sandbox saw, and kling's CPU
  time per poll against a requests.Session keep-alive loop making as many polls of the same
  tasks (whole-process CPU over polls, both);
- `batch` (tests/benchmarks/batch.py): 1,000 lines of 5 s tasks; and how batch scales, with
  near-instant tasks: CPU per line at 10,000 lines against 1,000, peak memory at 100,000;
- `gallery` (tests/benchmarks/gallery.py): `kling gallery DIR` over 1,000 videos, with
  sidecars and with only the journal, against `python -c pass`; and the page's size.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import batch, gallery, waiting
from .measure import MiB, Run, Stats, gnu_time, run
from .servers import StaticServer, make_file

ROWS = ("version", "help", "generate-help", "config-list", "list", "status", "download", "live")
ROWS += ("wait", "rounds", "saved", "batch", "batch-scale", "complete", "list-tty", "gallery")
WAIT_TASKS = 200
WAIT_QUEUE, WAIT_RUN, WAIT_INTERVAL = 1.0, 4.0, 1.0
WAIT_RUNS = 3


@dataclass
class Row:
    what: str
    kling: str
    reference: str
    result: str
    goal: str
    verdict: str  # PASS, MISS, SKIP or INFO


@dataclass
class Bench:
    kling: Path
    python: str
    home: Path
    work: Path
    env: dict[str, str]
    runs: int
    download_runs: int
    download_size: int
    rows: list[Row]

    def kling_argv(self, *args: str) -> list[str]:
        return [str(self.kling), *args]

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.what}: {row.result} ({row.verdict})", file=sys.stderr, flush=True)


def ms(stats: Stats) -> str:
    return f"{stats.median * 1000:.1f} ms ({stats.low * 1000:.1f}-{stats.high * 1000:.1f})"


def secs(stats: Stats) -> str:
    return f"{stats.median:.2f} s ({stats.low:.2f}-{stats.high:.2f})"


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def checked(r: Run, what: str) -> Run:
    if r.code != 0:
        raise SystemExit(f"benchmark: {what} exited {r.code}")
    return r


def side_by_side(
    subject: Callable[[], Run], reference: Callable[[], Run], runs: int, warmup: bool = True
) -> tuple[list[Run], list[Run]]:
    """Alternate the two (reference first), so that drifts in the machine hit both alike."""
    if warmup:  # page cache and .pyc files: measure the warm case both times
        reference()
        subject()
    subj: list[Run] = []
    ref: list[Run] = []
    for _ in range(runs):
        ref.append(reference())
        subj.append(subject())
    return subj, ref


# --- start-up rows ---------------------------------------------------------------------------


def startup_row(
    b: Bench, label: str, args: Sequence[str], goal: float, env: dict[str, str] | None = None
) -> None:
    """`env`: variables to add for the kling runs (the reference runs without them)."""
    kling_env = {**b.env, **(env or {})}
    subj, ref = side_by_side(
        lambda: checked(run(b.kling_argv(*args), kling_env, cwd=b.work), label),
        lambda: checked(run([b.python, "-c", "pass"], b.env, cwd=b.work), "python -c pass"),
        b.runs,
    )
    k, r = Stats.of([x.wall for x in subj]), Stats.of([x.wall for x in ref])
    ratio = k.median / r.median
    b.add(Row(label, ms(k), ms(r), f"{ratio:.1f}x", f"<= {goal:g}x", verdict(ratio <= goal)))


def complete_row(b: Bench) -> None:
    """A TAB on `kling wait `: what bash's script (completions/kling.bash) runs for it, from
    the journal of 50 tasks seeded before (each of them offered, or the row measures nothing)."""
    args = ["__complete-ids", ""]
    offered = subprocess.run(b.kling_argv(*args), env=b.env, capture_output=True, text=True)
    if len(offered.stdout.splitlines()) != 50:
        raise SystemExit(f"benchmark: kling __complete-ids offered {offered.stdout!r}")
    startup_row(b, "a TAB on `kling wait ` (kling __complete-ids '')", args, 3)


def status_row(b: Bench, task_id: str) -> None:
    """`kling status ID` against `import typer, requests` + 3x `python -c pass`, each run of
    the three alternated."""

    def python(code: str) -> Run:
        return checked(run([b.python, "-c", code], b.env, cwd=b.work), f"python -c {code!r}")

    def status() -> Run:
        return checked(run(b.kling_argv("status", task_id), b.env, cwd=b.work), "kling status")

    python("pass"), python("import typer, requests"), status()  # warm-up
    bare: list[float] = []
    imports: list[float] = []
    kling: list[float] = []
    for _ in range(b.runs):
        bare.append(python("pass").wall)
        imports.append(python("import typer, requests").wall)
        kling.append(status().wall)
    k, i, p = Stats.of(kling), Stats.of(imports), Stats.of(bare)
    reference = i.median + 3 * p.median
    ratio = k.median / reference
    b.add(
        Row(
            "kling status ID (loopback)",
            ms(k),
            f"{reference * 1000:.1f} ms = import typer, requests {ms(i)} + 3x pass {ms(p)}",
            f"{ratio:.2f}x",
            "<= 1.0x",
            verdict(ratio <= 1.0),
        )
    )


def seed_journal(home: Path, base_url: str, count: int) -> None:
    """Some history for `kling list`, as kling itself records it."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(home / JOURNAL_FILE)
    for i in range(count):
        body = {"model": "kling-v3-omni", "prompt": f"benchmark task {i}"}
        task = {"id": f"video_bench_{i:04d}", "status": "completed", "progress": 100}
        journal.record_submitted(TaskView.of(task), base_url, body)
    journal.close()


# --- status and download ---------------------------------------------------------------------


@contextmanager
def sandbox(queue: float, run_: float) -> Iterator[object]:
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    sb = Sandbox(config=SandboxConfig(queue_seconds=queue, run_seconds=run_)).start()
    try:
        yield sb
    finally:
        sb.stop()


def completed_task(sb: object, video_url: str) -> str:
    """A task the sandbox answers as completed, its video on our static server."""
    task = sb.state.create_task({"model": "kling-v3-omni", "prompt": "benchmark"})  # type: ignore[attr-defined]
    sb.set_task(  # type: ignore[attr-defined]
        task["id"],
        status="completed",
        progress=100,
        result={"type": "video", "data": [{"url": video_url}]},
    )
    return str(task["id"])


# kling's transfer loop alone: download() as `kling download` calls it (through the client's
# open_video), timed around the call, without the final fsync. Prints seconds.
LOOP_HARNESS = """
import sys, time
from pathlib import Path
from kling_cli.api.client import Client
from kling_cli.download import download
url, target = sys.argv[1], Path(sys.argv[2])
client = Client("http://127.0.0.1:9", None)  # the video host needs no key
started = time.perf_counter()
download(url, target, client.open_video, sync=False)
print(time.perf_counter() - started)
"""


def interleaved(subjects: Sequence[Callable[[], Run]], runs: int) -> list[list[Run]]:
    """Each of `subjects` once per round, in order, after one warm-up round."""
    for subject in subjects:
        subject()
    results: list[list[Run]] = [[] for _ in subjects]
    for _ in range(runs):
        for subject, out in zip(subjects, results, strict=True):
            out.append(subject())
    return results


def download_rows(b: Bench, sb: object, server: StaticServer, live: bool, main: bool) -> None:
    task_id = completed_task(sb, server.url("/video.mp4"))
    size = b.download_size
    url = server.url("/video.mp4")
    target = b.work / "out.mp4"

    def fresh() -> None:
        for p in b.work.iterdir():
            if p.name.startswith((".out.mp4", "out.mp4")):
                p.unlink()

    def saved(r: Run, what: str) -> Run:
        checked(r, what)
        assert target.stat().st_size == size, f"{what} saved a short file"
        return r

    def curl() -> Run:
        fresh()
        return saved(run(["curl", "-s", "-o", str(target), url], b.env, memory=True), "curl")

    def curl_sync() -> Run:
        fresh()
        argv = ["sh", "-c", 'curl -s -o "$1" "$2" && sync "$1"', "sh", str(target), url]
        return saved(run(argv, b.env), "curl && sync")

    def kling() -> Run:
        fresh()
        with (b.home / "download-stderr.txt").open("wb") as err:
            argv = b.kling_argv("download", task_id, "-o", str(target))
            r = run(argv, b.env, memory=True, stderr=err, cwd=b.work)
        return saved(r, "kling download")

    loop_seconds: list[float] = []

    def kling_loop() -> Run:
        fresh()
        with tempfile.TemporaryFile() as out:
            argv = [b.python, "-c", LOOP_HARNESS, url, str(target)]
            r = saved(run(argv, b.env, stdout=out, cwd=b.work), "the download loop harness")
            out.seek(0)
            loop_seconds.append(float(out.read()))
        return r

    if main:
        c, cs, k, _ = interleaved([curl, curl_sync, kling, kling_loop], b.download_runs)
        loop = Stats.of(loop_seconds[1:])  # the warm-up round is not counted
        kw, cw, csw = (Stats.of([x.wall for x in runs]) for runs in (k, c, cs))
        ratio, loop_ratio = kw.median / csw.median, loop.median / cw.median

        def speed(stats: Stats) -> str:
            return f"{size / stats.median / MiB:.0f} MiB/s"

        b.add(
            Row(
                f"download {size // MiB} MiB, whole process",
                secs(kw),
                f"curl -o F && sync F {secs(csw)}",
                f"{ratio:.2f}x ({speed(kw)} vs {speed(csw)}; vs curl -o F alone: "
                f"{kw.median / cw.median:.2f}x)",
                "<= 1.0x curl -o F && sync F",
                verdict(ratio <= 1.0),
            )
        )
        b.add(
            Row(
                "  its transfer loop, no final fsync",
                secs(loop),
                f"curl -o F {secs(cw)}",
                f"{loop_ratio:.2f}x ({speed(loop)} vs {speed(cw)})",
                "<= 1.0x curl -o F",
                verdict(loop_ratio <= 1.0),
            )
        )
        peaks = [x.max_rss for x in k]
        curl_peaks = [x.max_rss for x in c]
        if None in peaks:
            b.add(
                Row(
                    "peak memory during that download",
                    "n/a",
                    "",
                    "not measurable here",
                    "<= 40 MiB",
                    "SKIP",
                )
            )
        else:
            worst = max(p for p in peaks if p is not None)
            ref_peak = max(p for p in curl_peaks if p is not None)
            b.add(
                Row(
                    "peak memory during that download",
                    f"{mib(worst)} (max of runs)",
                    f"curl {mib(ref_peak)}",
                    mib(worst),
                    "<= 40 MiB",
                    verdict(worst <= 40 * MiB),
                )
            )
    if live:
        live_row(b, task_id, curl_sync, fresh, target)


def live_row(
    b: Bench,
    task_id: str,
    curl_sync: Callable[[], Run],
    fresh: Callable[[], None],
    target: Path,
) -> None:
    """The same download with stderr on a terminal (a pty): the live rich bar is drawn."""
    import pty

    redraw_counts: list[float] = []

    def kling_on_a_tty() -> Run:
        fresh()
        master, slave = pty.openpty()
        seen = bytearray()

        def drain() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                seen.extend(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        env = {**b.env, "TERM": "xterm-256color", "COLUMNS": "120"}
        try:
            r = run(
                b.kling_argv("download", task_id, "-o", str(target)), env, stderr=slave, cwd=b.work
            )
        finally:
            os.close(slave)
            reader.join(5)
            os.close(master)
        checked(r, "kling download (tty)")
        # Each redraw of the bar writes its speed column once: "... MB/s".
        redraw_counts.append(seen.count(b"/s") / r.wall)
        return r

    subj, ref = side_by_side(kling_on_a_tty, curl_sync, b.download_runs, warmup=True)
    k, c = Stats.of([x.wall for x in subj]), Stats.of([x.wall for x in ref])
    ratio = k.median / c.median
    rate = max(redraw_counts[1:] or redraw_counts)  # the warm-up run is not counted
    b.add(
        Row(
            "  same, live bar on a terminal",
            secs(k),
            f"curl -o F && sync F {secs(c)}",
            f"{ratio:.2f}x, {rate:.1f} redraws/s",
            "<= 1.0x; <= ~10 redraws/s",
            verdict(ratio <= 1.0 and rate <= 11),
        )
    )


# --- wait on many tasks ----------------------------------------------------------------------


# The reference poller: what a client built on the library kling chose must do per poll (one
# requests.Session keeping its connection, the same headers, the JSON read), round-robin over
# the tasks.
POLL_HARNESS = """
import json, sys
import requests
base, key, count, ids = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
session = requests.Session()
headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
for n in range(count):
    answer = session.get(f"{base}/v1/videos/generations/{ids[n % len(ids)]}", headers=headers,
                         timeout=30)
    assert answer.status_code == 200, (answer.status_code, answer.text)
    assert json.loads(answer.content)["status"]
"""


def wait_row(b: Bench) -> None:
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    with sandbox(WAIT_QUEUE, WAIT_RUN) as sb:
        connections = [0]
        api = getattr(sb, "_api", None)  # the sandbox's API listener, to count TCP connections
        if api is not None:
            accept = api.process_request

            def counting(request: object, address: object) -> None:
                connections[0] += 1
                accept(request, address)

            api.process_request = counting
        env = {**b.env, "KLING_BASE_URL": sb.base_url}  # type: ignore[attr-defined]
        key, base = env["KLING_API_KEY"], env["KLING_BASE_URL"]
        # kling on 200 new tasks, then as many polls of the same tasks (completed now) with the
        # stdlib, alternated, WAIT_RUNS times: the medians. Both measured the same way: the
        # whole process.
        runs: list[tuple[Run, int, int]] = []  # kling's run, its polls, its connections
        refs: list[Run] = []
        for n in range(WAIT_RUNS):
            journal = Journal(b.home / JOURNAL_FILE)
            ids = []
            for i in range(WAIT_TASKS):
                body = {"model": "kling-v3-omni", "prompt": f"wait benchmark {n}.{i}"}
                task = sb.state.create_task(body)  # type: ignore[attr-defined]
                journal.record_submitted(TaskView.of(task), sb.base_url, body)  # as generate
                ids.append(task["id"])
            journal.close()
            before, connections[0] = len(sb.log), 0  # type: ignore[attr-defined]
            argv = b.kling_argv("--no-progress", "wait", *ids, "--interval", f"{WAIT_INTERVAL:g}")
            r = checked(run(argv, env, memory=True, cwd=b.work, timeout=300), "kling wait")
            log = sb.log[before:]  # type: ignore[attr-defined]
            got = sum(
                1 for rec in log if rec.method == "GET" and "/videos/generations/" in rec.path
            )
            runs.append((r, got, connections[0]))
            poll_argv = [b.python, "-c", POLL_HARNESS, base, key, str(got)]
            refs.append(
                checked(run([*poll_argv, *ids], env, memory=True, cwd=b.work), "the requests loop")
            )
        # The same once more, one poll a task (all completed now): what each process costs
        # apart from its polls (start-up, exit), so that the CPU of one more poll shows alone.
        small_argv = [b.python, "-c", POLL_HARNESS, base, key, str(len(ids))]
        smalls: list[tuple[Run, Run]] = []
        for _ in range(3):
            ref_small = checked(run([*small_argv, *ids], env, cwd=b.work), "the requests loop")
            kling_small = checked(run(argv, env, cwd=b.work), "kling wait (completed tasks)")
            smalls.append((kling_small, ref_small))
    from kling_cli.engine.jobs import POLL_THREADS

    duration = WAIT_QUEUE + WAIT_RUN
    bound = WAIT_TASKS * (duration / WAIT_INTERVAL) + WAIT_TASKS
    r, polls, _ = sorted(runs, key=lambda run_: run_[0].cpu / max(1, run_[1]))[len(runs) // 2]
    kling_connections = max(conns for _, _, conns in runs)
    per_poll = r.cpu / polls * 1000 if polls else float("inf")
    conns = str(kling_connections) if api is not None else "n/a"
    # One session: a connection for each poll in flight at most (they are kept, not reopened).
    ok = all(got <= bound for _, got, _ in runs) and (
        api is None or kling_connections <= POLL_THREADS
    )
    b.add(
        Row(
            f"wait on {WAIT_TASKS} tasks ({duration:g} s each, --interval {WAIT_INTERVAL:g})",
            f"{r.wall:.2f} s, CPU {r.cpu:.2f} s, peak {mib(r.max_rss or 0)} (median of "
            f"{len(runs)} runs)",
            f"bound {bound:.0f} polls",
            f"{polls} polls, {per_poll:.2f} ms CPU/poll, {conns} connection(s)",
            f"<= {POLL_THREADS} connections; polls <= bound",
            verdict(ok),
        )
    )
    ref = Stats.of([x.cpu for x in refs])
    ref_polls = sorted(got for _, got, _ in runs)[len(runs) // 2]
    ref_per_poll = ref.median / ref_polls * 1000 if ref_polls else float("inf")
    ratio = per_poll / ref_per_poll
    extra = polls - WAIT_TASKS
    ref_extra = ref_polls - WAIT_TASKS
    kling_fixed = Stats.of([k.cpu for k, _ in smalls]).median
    ref_fixed = Stats.of([x.cpu for _, x in smalls]).median
    kling_marginal = (r.cpu - kling_fixed) / extra * 1000 if extra > 0 else float("inf")
    ref_marginal = (ref.median - ref_fixed) / ref_extra * 1000 if ref_extra > 0 else float("inf")
    b.add(
        Row(
            "  CPU per poll, against a requests.Session loop",
            f"{per_poll:.3f} ms",
            f"requests.Session keep-alive, {ref_polls} polls: {ref_per_poll:.3f} ms "
            f"(CPU {ref.median:.2f} s, {ref.low:.2f}-{ref.high:.2f})",
            f"{ratio:.2f}x",
            "<= 1.5x",
            verdict(ratio <= 1.5),
        )
    )
    b.add(
        Row(
            "  CPU per poll, start-up left out",
            f"{kling_marginal:.3f} ms (a run of {WAIT_TASKS} polls: CPU {kling_fixed:.2f} s)",
            f"requests: {ref_marginal:.3f} ms (a run of {WAIT_TASKS} polls: CPU {ref_fixed:.2f} s)",
            f"{kling_marginal / ref_marginal:.2f}x",
            "",
            "INFO",
        )
    )


# --- a long list on a terminal ------------------------------------------------------------------

LIST_TASKS = 10_000


def on_a_pty(argv: Sequence[str], env: dict[str, str], cwd: Path) -> Run:
    """Run `argv` with stdout and stderr on a fresh 120x40 pseudo-terminal, reading what it
    draws as a terminal would (as fast as it comes)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    def drain() -> None:
        while True:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    term = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    try:
        r = run(argv, {**term, "TERM": "xterm-256color"}, stdout=slave, stderr=slave, cwd=cwd)
    finally:
        os.close(slave)
        reader.join(5)
        os.close(master)
    return r


def list_tty_row(b: Bench, base_url: str) -> None:
    home = b.home.parent / "list-home"
    home.mkdir(exist_ok=True)
    seed_journal(home, base_url, LIST_TASKS)
    env = {**b.env, "KLING_HOME": str(home)}
    argv = b.kling_argv("list", "-n", str(LIST_TASKS))
    subj, ref = side_by_side(
        lambda: checked(on_a_pty(argv, env, b.work), "kling list on a terminal"),
        lambda: checked(run(argv, env, cwd=b.work), "kling list piped"),
        min(b.runs, 5),
    )
    k, r = Stats.of([x.wall for x in subj]), Stats.of([x.wall for x in ref])
    b.add(
        Row(
            f"kling list -n {LIST_TASKS:,} on a terminal (120x40 pty)",
            secs(k),
            f"piped {secs(r)}",
            f"{k.median:.2f} s",
            "<= 1.5 s",
            verdict(k.median <= 1.5),
        )
    )


# --- the table -------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    head = ("what", "kling: median (min-max)", "reference", "result", "goal", "")
    cells = [head] + [(r.what, r.kling, r.reference, r.result, r.goal, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def install_wheel(venv: Path) -> Path:
    """pip-install this checkout (not editable) into a new venv; return its kling script."""
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(repo)]
    subprocess.run(pip, check=True, stdout=subprocess.DEVNULL)
    print(f"kling benchmark: measuring a wheel install in {venv}", file=sys.stderr)
    return venv / "bin" / "kling"


def interpreter_of(script: Path) -> str:
    first = script.read_bytes().split(b"\n", 1)[0]
    if first.startswith(b"#!"):
        return first[2:].decode().strip().split()[0]
    return sys.executable


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="5 runs per start-up row, 2 downloads of 64 MiB"
    )
    parser.add_argument("--only", metavar="ROW,...", help=f"some of: {','.join(ROWS)}")
    parser.add_argument("--kling", type=Path, help="the kling script [default: beside python]")
    parser.add_argument(
        "--wheel",
        action="store_true",
        help="measure a fresh wheel install in a throwaway venv (as users get it: no "
        "editable-install hook, which costs every Python start here ~10 ms)",
    )
    parser.add_argument("--runs", type=int, help="runs per start-up row [default: 11]")
    parser.add_argument("--size", type=int, metavar="MIB", help="download size [default: 512]")
    parser.add_argument(
        "--batch-lines",
        type=int,
        default=batch.MEMORY_LINES,
        metavar="N",
        help="lines of batch-scale's memory run (0: none) [default: %(default)s]",
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(ROWS)
    unknown = only - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    kling = args.kling or Path(sys.executable).parent / "kling"
    wheel_venv = None
    if args.wheel:
        wheel_venv = tempfile.TemporaryDirectory(prefix="kling-bench-venv-")
        kling = install_wheel(Path(wheel_venv.name))
    if not kling.exists():
        found = shutil.which("kling")
        if found is None:
            parser.error("no kling script found: pip install -e . first, or pass --kling")
        kling = Path(found)
    if ({"download", "live"} & only) and shutil.which("curl") is None:
        parser.error("curl is needed for the download rows")

    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        root = Path(tmp)
        home, work = root / "home", root / "work"
        home.mkdir()
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}
        env.update(KLING_HOME=str(home), KLING_API_KEY="bench-key")
        size = (args.size or (64 if args.quick else 512)) * MiB
        b = Bench(
            kling=kling,
            python=interpreter_of(kling),
            home=home,
            work=work,
            env=env,
            runs=args.runs or (5 if args.quick else 11),
            download_runs=2 if args.quick else 3,
            download_size=size,
            rows=[],
        )
        # A wheel install byte-compiles the package; an editable one (with PYTHONDONTWRITEBYTECODE,
        # as on this machine) never does, and each run would compile every module again.
        import kling_cli

        subprocess.run(
            [b.python, "-m", "compileall", "-q", str(Path(kling_cli.__file__).parent)], check=True
        )
        version = subprocess.run([str(kling), "--version"], capture_output=True, text=True)
        print(
            f"kling benchmark: {version.stdout.strip()}, Python {platform.python_version()}, "
            f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}",
            file=sys.stderr,
        )
        with sandbox(1.0, 3.0) as sb:
            env["KLING_BASE_URL"] = sb.base_url  # type: ignore[attr-defined]
            seed_journal(home, sb.base_url, 50)  # type: ignore[attr-defined]
            startup = [
                ("version", "kling --version", ["--version"], 2),
                ("help", "kling --help", ["--help"], 8),
                ("generate-help", "kling generate --help", ["generate", "--help"], 8),
                ("config-list", "kling config list", ["config", "list"], 9),
                ("list", "kling list (local only)", ["list"], 9),
            ]
            for key, label, cmd, goal in startup:
                if key in only:
                    startup_row(b, label, cmd, goal)
            if "complete" in only:
                complete_row(b)
            if "list-tty" in only:
                list_tty_row(b, sb.base_url)  # type: ignore[attr-defined]
            if {"status", "download", "live"} & only:
                video = make_file(root / "video.mp4", size) if {"download", "live"} & only else None
                with StaticServer({"/video.mp4": video} if video else {}) as server:
                    if "status" in only:
                        task_id = completed_task(sb, server.url("/video.mp4"))
                        status_row(b, task_id)
                    if {"download", "live"} & only:
                        download_rows(b, sb, server, "live" in only, "download" in only)
        if "wait" in only:
            wait_row(b)
        waiting.run_rows(b, only)
        if "batch" in only:
            batch.batch_row(b)
        if "batch-scale" in only:
            batch.scale_rows(b, args.batch_lines)
        if "gallery" in only:
            gallery.gallery_rows(b)
        memory_note = "GNU time %M" if gnu_time() else "/proc VmHWM polling"
        print()
        print(
            f"kling {version.stdout.strip().removeprefix('kling ')} | Python "
            f"{platform.python_version()} | {os.cpu_count()} cores | "
            f"{time.strftime('%Y-%m-%d')} | start-up runs {b.runs}, downloads {b.download_runs}"
            f" | peak memory: {memory_note}"
        )
        print()
        print(table(b.rows))
        return 0 if all(r.verdict in ("PASS", "SKIP", "INFO") for r in b.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
