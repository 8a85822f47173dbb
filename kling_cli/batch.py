"""Batch generation: read and check JSON Lines, then submit, poll and download them all.

The run is resumable and never pays twice: before a line's request goes out, its key (the
file's identity, the line's number and its text) is written to the journal; the task id follows
the moment it comes back. A re-run skips every line already sent and takes up polling and
downloading where they stopped. All journal writes happen on the main thread; worker threads
only talk HTTP.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import config, download, interrupts, request, tasks, workflow
from .env import Env
from .errors import (
    APIError,
    ExitCode,
    Interrupted,
    KlingError,
    LocalFileError,
    ServiceUnavailable,
    SubmitUncertain,
    UsageError,
    WaitTimeout,
)
from .journal import Journal

FIELDS = (*request.LINE_KEYS, "output")
PARALLEL_LIMIT_CODES = {"1303", 1303}  # Kling: "parallel task over resource pack limit"
BACKPRESSURE_WAIT = (2.0, 30.0)  # first and longest pause when the account is at its limit
MAX_POLL_ERRORS = 5


@dataclass
class Line:
    """One input line, checked, and where it stands."""

    number: int
    text: str
    key: str
    request: request.Request
    body: dict[str, Any]  # local images' paths stand in for their URLs until uploaded
    output: str | None
    state: str = "new"  # new, sending, waiting, polling, downloading, done
    task_id: str | None = None
    view: tasks.TaskView = tasks.NOT_SEEN
    files: list[Path] = field(default_factory=list)
    error: KlingError | None = None
    interval: float = tasks.FIRST_INTERVAL
    poll_errors: int = 0
    sent_at: float | None = None

    @property
    def code(self) -> ExitCode:
        return self.error.exit_code if self.error is not None else self.view.exit_code

    def document(self) -> dict[str, Any]:
        """What --json prints for the line: the task as the service gave it, or the error."""
        doc: dict[str, Any] = {"line": self.number}
        if self.view:
            doc.update(self.view.raw)
            doc["line"] = self.number
            if self.files:
                doc["output_files"] = [str(f) for f in self.files]
        if self.error is not None:
            doc["error"] = {
                "type": self.error.kind,
                "message": self.error.message,
                "exit_code": int(self.error.exit_code),
            }
            if self.error.hint:
                doc["error"]["hint"] = self.error.hint
            if self.task_id:
                doc.setdefault("id", self.task_id)
        return doc


@dataclass
class Options:
    parallel: int = 4
    output: Path | None = None
    sidecar: bool = False
    restart: bool = False
    force: bool = False
    timeout: float | None = None
    interval: float | None = None


# --- reading and checking ------------------------------------------------------------------


def source_identity(path: Path | None, text: str) -> str:
    """Which file this is: its absolute path; for stdin, its content."""
    if path is None:
        return "stdin:" + hashlib.sha256(text.encode()).hexdigest()
    return str(path.resolve())


def parse(text: str, source: str, base_dir: Path, env: Env) -> list[Line]:
    """Every line checked before anything is sent: all problems at once, with line numbers."""
    lines: list[Line] = []
    problems: list[str] = []
    outputs: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = parse_line(number, raw, source, base_dir, env)
        except UsageError as exc:
            problems.append(f"line {number}: {exc.message}")
            continue
        if line.output is not None:
            if line.output in outputs:
                problems.append(
                    f"line {number}: output {line.output!r} is also line {outputs[line.output]}'s"
                )
            outputs[line.output] = number
        lines.append(line)
    if problems:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        raise UsageError(
            f"{len(problems)} bad line{'s' if len(problems) > 1 else ''}; nothing was sent:\n  "
            + "\n  ".join(shown)
        )
    if not lines:
        raise UsageError("the batch file has no lines")
    return lines


def parse_line(number: int, raw: str, source: str, base_dir: Path, env: Env) -> Line:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError("must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UsageError(
            f"unknown field {', '.join(map(repr, unknown))} (known: {', '.join(FIELDS)})"
        )
    wanted = request.from_line(data, base_dir, env.setting)
    output = data.get("output")
    if output is not None and (
        not isinstance(output, str) or download.safe_filename(output, "") != output
    ):
        raise UsageError("`output` must be a plain file name (letters, digits, . _ -)")
    key = hashlib.sha256(f"{source}\0{number}\0{raw}".encode()).hexdigest()
    return Line(number, raw, key, wanted, wanted.body(), output)


@contextmanager
def one_run_at_a_time(env: Env, source: str) -> Iterator[None]:
    """One run of a batch file at a time: two would both send every line not yet recorded,
    and pay twice. The lock is the kernel's (flock), so a killed run never leaves it held."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    folder = config.data_dir(env.environ) / "locks"
    name = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / f"batch-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LocalFileError(f"cannot make the batch lock in {folder}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise UsageError(
                f"another kling (pid {holder}) is running this batch file; nothing was sent",
                hint="wait for it to finish, then run this again: it picks up where that one "
                "stopped and sends nothing twice",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# --- running -------------------------------------------------------------------------------


Job = tuple[str, Line]  # (kind, line): kind is "send", "poll" or "fetch"


class Runner:
    """Keeps at most `parallel` requests in flight: downloads first, then due polls, then new
    submissions. Everything that changes state happens here, on the main thread.

    Each kind of work has its own queue, so that picking the next job costs the same for a
    batch of 10,000 lines as for 10: `to_fetch` and `to_send` in order, and `polls`, a heap
    of (next poll, line number, line) holding exactly the lines in state "waiting"."""

    def __init__(
        self,
        env: Env,
        lines: list[Line],
        opts: Options,
        source: str,
        on_change: Callable[[Line], None],
        on_done: Callable[[Line], None],
    ):
        self.env = env
        self.lines = lines
        self.opts = opts
        self.source = source
        self.on_change = on_change
        self.on_done = on_done
        self.to_send: deque[Line] = deque()
        self.to_fetch: deque[Line] = deque()
        self.polls: list[tuple[float, int, Line]] = []
        self.inflight: dict[Future[Any], Job] = {}
        self.paused_until = 0.0
        self.backpressure = BACKPRESSURE_WAIT[0]
        self.started = env.clock()

    # -- setup --------------------------------------------------------------------------------

    def resume(self) -> None:
        """Sort lines into: already done, to poll (sent before), unsure, and to send."""
        if self.opts.restart:
            self.env.try_journal(lambda j: j.batch_forget_source(self.source))
        for line in self.lines:
            sent = self.env.try_journal(partial(Journal.batch_line, key=line.key))
            if sent is None:
                self.to_send.append(line)
            elif sent[0] is None:
                line.error = SubmitUncertain(
                    f"line {line.number} was being sent when an earlier run stopped; "
                    "it may have made a task, so it was not sent again",
                    hint="look for it with `kling list`; --restart sends every line again",
                )
                self._finish(line)
            else:
                line.task_id = sent[0]
                entry = self.env.try_journal(partial(Journal.get, task_id=sent[0]))
                if entry is None:
                    self._poll_at(line, self.env.clock())
                    continue
                line.view = entry.view  # as last seen: no need to ask again what is final
                line.files = [Path(f) for f in entry.files if Path(f).exists()]
                if line.view.completed and self.opts.output and not line.files:
                    self._fetch(line)
                elif line.view.final:
                    self._finish(line)
                else:
                    self._poll_at(line, self.env.clock())

    def upload_images(self, pool: ThreadPoolExecutor) -> None:
        """Each distinct local image once (or not at all, if the journal has a fresh URL)."""
        paths = {path for line in self.to_send for path in line.request.local_files()}
        urls: dict[Path, str] = {}
        todo: list[tuple[Path, str]] = []
        for path in sorted(paths):
            digest = workflow.file_sha256(path)
            cached = self.env.try_journal(partial(Journal.cached_upload, sha256=digest))
            if cached:
                urls[path] = cached
            else:
                todo.append((path, digest))
        futures = {pool.submit(self.env.client.upload_image, path): (path, d) for path, d in todo}
        for future, (path, digest) in futures.items():
            url = str(future.result()["url"])
            self.env.try_journal(partial(Journal.remember_upload, sha256=digest, url=url))
            urls[path] = url
        for line in self.to_send:
            if line.request.local_files():
                line.body = line.request.body(urls)

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        with (
            ThreadPoolExecutor(self.opts.parallel, thread_name_prefix="kling-batch") as pool,
            interrupts.held() as gate,
        ):
            try:
                with gate.opened():  # nothing is sent while uploading
                    self.upload_images(pool)
                self._loop(pool, gate)
            except KeyboardInterrupt:
                self._settle_sends()
                pool.shutdown(wait=False, cancel_futures=True)
                raise Interrupted(
                    "interrupted; tasks already made go on at the service",
                    hint="run the same command again: nothing is sent twice",
                ) from None

    def _loop(self, pool: ThreadPoolExecutor, gate: interrupts.Gate) -> None:
        """Ctrl-C lands only while waiting: a request's outcome is settled (a task id
        recorded) whole, or not taken from `inflight` at all, so `_settle_sends` finds it."""
        while True:
            gate.check()
            now = self.env.clock()
            if self.opts.timeout is not None and now - self.started >= self.opts.timeout:
                self._time_out()
            while len(self.inflight) < self.opts.parallel:
                job = self._next_job(now)
                if job is None:
                    break
                self._start(pool, job)
            if not self.inflight and not self._pending():
                return
            idle = self._idle_for(now)
            if not self.inflight:  # wait() returns at once on no futures: it cannot idle
                with gate.opened():
                    self.env.sleep(idle or 0.0)
                continue
            with gate.opened():
                done, _ = wait(self.inflight, timeout=idle, return_when=FIRST_COMPLETED)
            for future in done:
                kind, line = self.inflight.pop(future)
                self._settle(kind, line, future)

    def _pending(self) -> bool:
        return bool(self.to_send or self.to_fetch or self.polls)

    def _idle_for(self, now: float) -> float | None:
        """How long to wait for a request to finish before there is other work (None: until
        one finishes). With every slot taken, a due poll is no reason to wake up."""
        wakes = []
        if len(self.inflight) < self.opts.parallel:
            if self.polls:
                wakes.append(self.polls[0][0])
            if self.to_send:
                wakes.append(self.paused_until)
        if self.opts.timeout is not None and self.started + self.opts.timeout > now:
            wakes.append(self.started + self.opts.timeout)
        return max(0.0, min(wakes) - now) if wakes else None

    def _next_job(self, now: float) -> Job | None:
        if self.to_fetch:
            return "fetch", self.to_fetch.popleft()
        if self.polls and self.polls[0][0] <= now:
            return "poll", heapq.heappop(self.polls)[2]
        if self.to_send and now >= self.paused_until:
            return "send", self.to_send.popleft()
        return None

    def _start(self, pool: ThreadPoolExecutor, job: Job) -> None:
        kind, line = job
        if kind == "send":
            # Written before the request leaves: a crash from here on never sends it again.
            self.env.try_journal(lambda j: j.batch_sending(line.key, line.number, self.source))
            line.state = "sending"
            future: Future[Any] = pool.submit(self.env.client.create_task, line.body)
        elif kind == "poll":
            line.state = "polling"
            future = pool.submit(self.env.client.get_task, str(line.task_id))
        else:
            line.state = "downloading"
            target = self._target(line)
            future = pool.submit(
                workflow.fetch_video, self.env, line.view, target, force=self.opts.force
            )
        self.inflight[future] = job
        self.on_change(line)

    def _settle(self, kind: str, line: Line, future: Future[Any]) -> None:
        try:
            result = future.result()
        except KlingError as exc:
            self._failed(kind, line, exc)
        else:
            if kind == "send":
                self._sent(line, result)
            elif kind == "poll":
                self._polled(line, result)
            else:
                path, task = result
                self._fetched(line, path, task)
        self.on_change(line)

    def _settle_sends(self) -> None:
        """After Ctrl-C: let requests already sent come back, so their ids are recorded."""
        sends = {f: job for f, job in self.inflight.items() if job[0] == "send"}
        done, _ = wait(sends, timeout=30)
        for future in done:
            self._settle("send", sends[future][1], future)

    # -- outcomes -----------------------------------------------------------------------------

    def _sent(self, line: Line, task: tasks.TaskView) -> None:
        line.task_id = task.id
        line.view = task
        line.sent_at = time.time()
        self.env.record_submitted(task, line.body, batch_key=line.key)
        self.backpressure = BACKPRESSURE_WAIT[0]
        self._schedule(line)

    def _polled(self, line: Line, task: tasks.TaskView) -> None:
        changed = task.status != line.view.status
        line.view = task
        line.poll_errors = 0
        if changed:  # the journal is written when the status changes
            self.env.record_update(task)
        if task.completed and self.opts.output is not None:
            self._fetch(line)
        elif task.final:
            if task.completed and task.video_url is None:
                line.error = workflow.no_video_url(task)
            self._finish(line)
        else:
            self._schedule(line)

    def _fetched(self, line: Line, path: Path, task: tasks.TaskView) -> None:
        line.view = task
        line.files = [path]
        self.env.record_file(str(line.task_id), path)
        if self.opts.sidecar:
            write_sidecar(path, line)
        self._finish(line)

    def _failed(self, kind: str, line: Line, exc: KlingError) -> None:
        if kind == "send":
            if isinstance(exc, APIError) and (
                exc.code in PARALLEL_LIMIT_CODES or exc.status == 429
            ):
                # Not accepted: the account is at its limit. Everyone waits, then it goes again.
                self.env.try_journal(lambda j: j.batch_not_sent(line.key))
                wait_s = exc.retry_after or self.backpressure
                self.backpressure = min(self.backpressure * 2, BACKPRESSURE_WAIT[1])
                self.paused_until = self.env.clock() + wait_s
                line.state = "new"
                self.to_send.appendleft(line)
                return
            surely_not_made = isinstance(exc, APIError) and 400 <= exc.status < 500
            surely_not_made = surely_not_made or (
                isinstance(exc, ServiceUnavailable) and not isinstance(exc, SubmitUncertain)
            )
            if surely_not_made:
                self.env.try_journal(lambda j: j.batch_not_sent(line.key))
            elif isinstance(exc, SubmitUncertain):
                self.env.record_attempt(line.body, exc.message)
        elif kind == "poll" and not (isinstance(exc, APIError) and exc.concerns_one_task):
            line.poll_errors += 1
            if line.poll_errors < MAX_POLL_ERRORS:  # a bad patch of network: try again later
                self._schedule(line)
                return
        line.error = exc
        self._finish(line)

    def _schedule(self, line: Line) -> None:
        tracked = tasks.Tracked(str(line.task_id), view=line.view, interval=line.interval)
        gap = tasks.next_gap(tracked, self.opts.interval)
        line.interval = tracked.interval
        self._poll_at(line, self.env.clock() + gap)

    def _poll_at(self, line: Line, when: float) -> None:
        line.state = "waiting"
        heapq.heappush(self.polls, (when, line.number, line))

    def _fetch(self, line: Line) -> None:
        line.state = "fetch"
        self.to_fetch.append(line)

    def _time_out(self) -> None:
        hint = "run the same command again to go on"
        while self.polls:
            line = heapq.heappop(self.polls)[2]
            line.error = WaitTimeout(f"task {line.task_id} is not final yet", hint=hint)
            self._finish(line)
        while self.to_send:
            line = self.to_send.popleft()
            line.error = WaitTimeout(f"line {line.number} was not sent in time", hint=hint)
            self._finish(line)

    def _finish(self, line: Line) -> None:
        line.state = "done"
        self.on_done(line)

    def _target(self, line: Line) -> Path:
        assert self.opts.output is not None
        name = line.output or f"{line.number:04d}-{download.safe_filename(str(line.task_id))}"
        return self.opts.output / name


def write_sidecar(video: Path, line: Line) -> Path:
    """`NAME.json` beside `NAME.mp4`: what made the video, so a folder explains itself."""
    task = line.view
    document = {
        "line": line.number,
        "task_id": line.task_id,
        "prompt": line.body.get("prompt"),
        "parameters": line.body,
        "video_url": task.video_url,
        "video_file": video.name,
        "created_at": task.raw.get("created_at"),
        "completed_at": task.raw.get("completed_at"),
        "saved_at": int(time.time()),
    }
    target = video.with_suffix(".json")
    fd, tmp = tempfile.mkstemp(dir=video.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
