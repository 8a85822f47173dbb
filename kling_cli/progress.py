"""Progress on stderr, chosen once per command: live rich displays on a terminal (live.py), a
plain line per change for CI logs, JSON events for programs, or nothing. rich is imported only
when a live display is used."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from .env import Env
from .output import counted

if TYPE_CHECKING:
    from .jobs import Job


class WaitDisplay(Protocol):
    live: bool  # it owns the terminal while it runs: results wait until it closes

    def update(self, job: Job) -> None: ...
    def transfer(self, job: Job) -> None: ...  # bytes of its video came in (any thread)
    def close(self) -> None: ...


class TransferDisplay(Protocol):
    def advance(self, done: int, total: int | None) -> None: ...
    def finish(self) -> None: ...  # the transfer succeeded (not called when it failed)
    def close(self) -> None: ...  # always, last


def wait_display(env: Env, quiet: bool = False) -> WaitDisplay:
    mode = env.progress_mode(quiet)
    if mode == "json":
        return JsonEvents(env)
    if mode == "live":
        from .live import LiveWait

        return LiveWait(env)
    if mode == "plain":
        return PlainWait(env)
    return NullDisplay()


def transfer_display(
    env: Env, label: str, quiet: bool = False, file: str | None = None, total: int | None = None
) -> TransferDisplay:
    """A byte bar for one transfer of `total` bytes (when known); `file`: the local file it
    reads (uploads), for events."""
    mode = env.progress_mode(quiet)
    if mode == "json":
        return JsonTransfer(env, file or label)
    if mode == "live":
        from .live import LiveTransfer

        return LiveTransfer(env, label, total)
    if mode == "plain":
        return PlainTransfer(env, label)
    return NullDisplay()


class NullDisplay:
    """Any display, showing nothing."""

    live = False

    def update(self, job: Job) -> None:
        pass

    def transfer(self, job: Job) -> None:
        pass

    def change(self, job: Job) -> None:
        pass

    def done(self, job: Job) -> None:
        pass

    def advance(self, done: int, total: int | None) -> None:
        pass

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


def describe(job: Job) -> tuple[str, str]:
    """(status, detail) of a task for a display row or line."""
    progress = job.view.progress
    if job.error is not None and job.error.kind == "stalled":  # the row still fits: say so
        return "stalled", "" if progress is None else f"{progress}%"
    if job.error is not None:
        return "error", job.error.message
    if job.stage.value == "downloading":
        total = f"/{job.total / 1e6:.1f}" if job.total else ""
        return "downloading", f"{job.received / 1e6:.1f}{total} MB" if job.received else ""
    if job.files:
        return job.view.status, "saved " + " ".join(str(f) for f in job.files)
    return job.view.status, "" if progress is None else f"{progress}%"


class PlainWait:
    """One line when a task's status or progress changes: readable in CI logs."""

    live = False

    def __init__(self, env: Env):
        self.env = env
        self.seen: dict[int, tuple[str, str]] = {}

    def update(self, job: Job) -> None:
        if not job.task_id or job.error is not None:  # nothing to follow yet; or its error,
            return  # which the command reports once, when the task's result is printed
        state = describe(job)
        if state[0] == "downloading":
            state = (state[0], "")  # one line per download, not one per chunk
        elif not job.view:
            return  # not seen yet: no status to tell
        if self.seen.get(job.order) != state:
            self.seen[job.order] = state
            self.env.note(f"{job.name} {' '.join(s for s in state if s)}")

    def transfer(self, job: Job) -> None:
        pass  # the row or line is redrawn from the job as it stands

    def close(self) -> None:
        pass


class PlainTransfer:
    def __init__(self, env: Env, label: str):
        self.env = env
        self.label = label
        self.done = 0
        self.total: int | None = None
        env.note(f"{label} ...")

    def advance(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total

    def finish(self) -> None:  # a failed transfer says nothing here: its error follows
        self.env.note(f"{self.label}: done, {counted(self.done, 'byte')}")

    def close(self) -> None:
        pass


EVENT_INTERVAL = 0.25  # seconds between two `download`/`upload` events of one transfer


class JsonEvents:
    """CLI.md's event stream, one JSON line on stderr per event: `submitted`, `status` (only
    when a task's status or progress changed), `download`, `saved`, `stalled`. Errors are
    the command's to report (Env.error makes them `error` events), so they are not repeated.
    A display for wait, generate, download (`update`) and batch (`change`, `done`) alike."""

    live = False

    def __init__(self, env: Env):
        self.env = env
        self.seen: dict[int, tuple[str | None, str, int | None]] = {}
        self.saved: set[int] = set()
        self.last_bytes: dict[int, tuple[float, int]] = {}  # when, and how many bytes

    def update(self, job: Job) -> None:
        task_id = job.task_id
        if task_id is None:
            return
        before = self.seen.get(job.order)
        now = (task_id, job.view.status, job.view.progress)
        if before is None and job.body is not None:  # it was sent by this run
            self.env.event("submitted", task_id=task_id)
        if job.view and (before is None or before[1:] != now[1:]):
            self.env.event("status", task_id=task_id, status=now[1], progress=now[2])
        self.seen[job.order] = now
        if job.files and job.order not in self.saved:
            self.saved.add(job.order)
            told = self.last_bytes.get(job.order, (0.0, 0))[1]
            if job.total and told != job.total:  # the last bytes: a reader's bar ends full
                self.env.event("download", task_id=task_id, bytes=job.total, total=job.total)
            for path in job.files:
                self.env.event("saved", task_id=task_id, file=str(path))
        if job.error is not None and job.error.kind == "stalled":
            self.env.event("stalled", task_id=task_id)

    change = update

    def done(self, job: Job) -> None:
        """A batch line ended: said, then forgotten, so a long batch keeps only lines in
        flight."""
        self.update(job)
        for seen in (self.seen, self.last_bytes):
            seen.pop(job.order, None)
        self.saved.discard(job.order)

    def transfer(self, job: Job) -> None:
        """Bytes of a video came in (on a worker thread): a `download` event, at most every
        EVENT_INTERVAL per task."""
        now, received = time.monotonic(), job.received
        last = self.last_bytes.get(job.order, (0.0, 0))[0]
        if now - last >= EVENT_INTERVAL or received == job.total:
            self.last_bytes[job.order] = (now, received)
            self.env.event("download", task_id=job.task_id, bytes=received, total=job.total)

    def close(self) -> None:
        pass


class JsonTransfer:
    """`upload` events for one file: as bytes go, at most every EVENT_INTERVAL, and the last."""

    def __init__(self, env: Env, file: str):
        self.env = env
        self.file = file
        self.last = 0.0
        self.done = 0
        self.total: int | None = None

    def advance(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        if time.monotonic() - self.last >= EVENT_INTERVAL or (total and done >= total):
            self.last = time.monotonic()
            self.env.event("upload", file=self.file, bytes=done, total=total)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass
