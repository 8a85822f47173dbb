"""Progress on stderr, chosen once per command: a live rich display on a terminal (live.py), a
plain line per change for CI logs, JSON events for programs, or nothing. One interface,
`Display`, for wait, generate, download and batch alike; rich is imported only when a live
display is used."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from . import present

if TYPE_CHECKING:
    from .context import Ui
    from .engine.jobs import Job


class Display(Protocol):
    def change(self, job: Job) -> None: ...  # a job moved on (its stage, status or progress)
    def done(self, job: Job) -> None: ...  # a job ended: said, then forgotten
    def transfer(self, job: Job) -> None: ...  # bytes of its video came in (any thread)
    def above(self, write: Callable[[], None]) -> None: ...  # a result, with the display aside
    def close(self) -> None: ...


class TransferDisplay(Protocol):
    def advance(self, done: int, total: int | None) -> None: ...
    def finish(self) -> None: ...  # the transfer succeeded (not called when it failed)
    def close(self) -> None: ...  # always, last


def display(ui: Ui, quiet: bool = False, *, lines: int | None = None) -> Display:
    """The display of a command's tasks; `lines`: a batch of that many lines (a bar over a
    row per line in flight, on a terminal)."""
    mode = ui.progress_mode(quiet)
    if mode == "json":
        return JsonEvents(ui, batch=lines is not None)
    if mode == "live":
        from .live import LiveBatch, LiveWait

        return LiveWait(ui) if lines is None else LiveBatch(ui, lines)
    if mode == "plain":
        return PlainLines(ui, batch=lines is not None)
    return NullDisplay()


def transfer_display(
    ui: Ui,
    label: str,
    quiet: bool = False,
    file: str | None = None,
    total: int | None = None,
    *,
    task_id: str | None = None,
) -> TransferDisplay:
    """A byte bar for one transfer of `total` bytes (when known); `file`: the local file it
    reads (uploads), for events; `task_id`: the task whose video comes down (`download -o -`),
    whose events are `download` events."""
    mode = ui.progress_mode(quiet)
    if mode == "json":
        if task_id is not None:
            return JsonTransfer(ui, task_id, event="download", key="task_id")
        return JsonTransfer(ui, file or label)
    if mode == "live":
        from .live import LiveTransfer

        return LiveTransfer(ui, label, total)
    if mode == "plain":
        return PlainTransfer(ui, label)
    return NullDisplay()


class NullDisplay:
    """Any display, showing nothing: the other displays build on it, each writing only the
    methods that show something."""

    def change(self, job: Job) -> None:
        pass

    def done(self, job: Job) -> None:
        pass

    def transfer(self, job: Job) -> None:
        pass

    def advance(self, done: int, total: int | None) -> None:
        pass

    def finish(self) -> None:
        pass

    def above(self, write: Callable[[], None]) -> None:
        write()

    def close(self) -> None:
        pass


class PlainLines(NullDisplay):
    """One line when a job's status or progress changes: readable in CI logs. `batch`: the
    lines are named `line N`, and each says where it stands from the first step."""

    def __init__(self, ui: Ui, batch: bool = False):
        self.ui = ui
        self.batch = batch
        self.seen: dict[int, tuple[str, str]] = {}  # jobs in flight: what was said of each
        self._saying = threading.Lock()  # `transfer` comes from worker threads

    def change(self, job: Job) -> None:
        shown = present.job(job)
        if self.batch:
            name = f"line {job.order} {job.task_id or ''}".rstrip()
            if not job.done:
                words = (shown.status, shown.progress)
            else:
                words = ("error:" if job.error else shown.status, shown.detail)
        else:  # a task once it is heard of; its error is the command's to say, once
            name = job.name
            if not job.task_id or job.error is not None:
                return
            if shown.status == "downloading":
                words = (shown.status, "")  # one line per download, not one per chunk
            elif not job.view:
                return
            else:
                words = (shown.status, "saved " + shown.detail if job.files else shown.progress)
        self._say(job, name, words)

    def done(self, job: Job) -> None:
        self.change(job)
        self.seen.pop(job.order, None)

    def transfer(self, job: Job) -> None:
        """The first bytes of a video whose task was not known to be completed when its
        download began (`kling download ID`): only now is it downloading. One line per
        download, not one per chunk."""
        if not self.batch and job.task_id:
            self._say(job, job.name, ("downloading", ""))

    def _say(self, job: Job, name: str, words: tuple[str, str]) -> None:
        """A line, unless it is what was said of the job last."""
        with self._saying:
            if self.seen.get(job.order) == words:
                return
            self.seen[job.order] = words
        self.ui.note(" ".join(s for s in (name, *words) if s))


class PlainTransfer:
    def __init__(self, ui: Ui, label: str):
        self.ui = ui
        self.label = label
        self.done = 0
        ui.note(f"{label} ...")

    def advance(self, done: int, total: int | None) -> None:
        self.done = done

    def finish(self) -> None:  # a failed transfer says nothing here: its error follows
        self.ui.note(f"{self.label}: done, {self.done} byte{'s' * (self.done != 1)}")

    def close(self) -> None:
        pass


EVENT_INTERVAL = 0.25  # seconds between two `download`/`upload` events of one transfer


class JsonEvents(NullDisplay):
    """CLI.md's event stream, one JSON line on stderr per event: `submitted`, `status` (only
    when a task's status or progress changed), `download`, `saved`, `stalled`. Errors are
    the command's to report (Ui.error makes them `error` events), so they are not repeated.
    `batch`: each event also names its `line`."""

    def __init__(self, ui: Ui, batch: bool = False):
        self.ui = ui
        self.batch = batch
        self.seen: dict[int, tuple[str, int | None]] = {}  # jobs in flight: status, progress
        self.saved: set[int] = set()
        self.last_bytes: dict[int, tuple[float, int]] = {}  # when, and how many bytes

    def change(self, job: Job) -> None:
        task_id = job.task_id
        if task_id is None:
            return
        before = self.seen.get(job.order)
        now = (job.view.status, job.view.progress)
        if before is None and job.body is not None:  # it was sent by this run
            self._event(job, "submitted", task_id=task_id)
        if job.view and before != now:
            self._event(job, "status", task_id=task_id, status=now[0], progress=now[1])
        self.seen[job.order] = now
        if job.files and job.order not in self.saved:
            self.saved.add(job.order)
            told = self.last_bytes.get(job.order, (0.0, 0))[1]
            if job.total and told != job.total:  # the last bytes: a reader's bar ends full
                self._event(job, "download", task_id=task_id, bytes=job.total, total=job.total)
            for path in job.files:
                self._event(job, "saved", task_id=task_id, file=str(path))
        if job.error is not None and job.error.kind == "stalled":
            self._event(job, "stalled", task_id=task_id)

    def done(self, job: Job) -> None:
        """Said, then forgotten: a long batch keeps only the lines in flight."""
        self.change(job)
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
            self._event(job, "download", task_id=job.task_id, bytes=received, total=job.total)

    def _event(self, job: Job, name: str, **fields: object) -> None:
        self.ui.event(name, **fields, **({"line": job.order} if self.batch else {}))


class JsonTransfer(NullDisplay):
    """`upload` events for one file (or `download` events for one task's video): as bytes
    go, at most every EVENT_INTERVAL, and the last."""

    def __init__(self, ui: Ui, name: str, event: str = "upload", key: str = "file"):
        self.ui = ui
        self.name = name
        self.kind = event
        self.key = key
        self.last = 0.0

    def advance(self, done: int, total: int | None) -> None:
        if time.monotonic() - self.last >= EVENT_INTERVAL or (total and done >= total):
            self.last = time.monotonic()
            self.ui.event(self.kind, **{self.key: self.name, "bytes": done, "total": total})
