"""Running a batch on the lifecycle engine: each line enters where the journal says it stood.

The run is resumable and never pays twice: before a line's request goes out, its key (what it
asks and its occurrence in the file, lines.py) is written to the journal; the task id follows
the moment it comes back. A re-run skips every line already sent and takes up polling and
downloading where they stopped. The sending, polling and saving are the engine's.

Lines are read from the file as the run takes them (`feed`), at most WINDOW of them entered
and not yet printed, so a file of 100,000 lines runs in the memory of a few hundred.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from .. import download, interrupts, present, uploads
from ..engine.jobs import Plan
from ..engine.run import engine_for, interrupted
from ..env import Env
from ..errors import APIError, Interrupted, KlingError, Stalled, SubmitUncertain
from ..paths import write_atomically
from ..progress import Display
from .lines import Index, Line, Shard, Source
from .sidecar import write_sidecar

WINDOW = 1000  # lines entered and not yet printed, at most (printing waits for earlier lines)
RESUME_HINT = "run the same command again to keep waiting for it: nothing is sent twice"


@dataclass
class Options:
    parallel: int = 4
    output: Path | None = None
    sidecar: bool = False
    restart: bool = False
    retry_failed: bool = False
    force: bool = False
    timeout: float | None = None
    stall_timeout: float | None = None
    interval: float | None = None
    shard: Shard = field(default_factory=Shard)


class Entry(str, Enum):
    """Where a line enters the engine, from what the journal says of it."""

    SEND = "send"  # never sent
    POLL = "poll"  # sent, its task not final when last seen
    FETCH = "fetch"  # completed, its video not saved (or no longer there)
    DONE = "done"  # final, as last seen: nothing to ask
    UNSURE = "unsure"  # sent, and no answer heard (a run stopped, or it was lost)


class Runner:
    """A batch on the lifecycle engine. `on_done` is called for each line as it ends, in any
    order; the caller prints them in line order and calls `shown` for each it printed."""

    def __init__(
        self,
        env: Env,
        source: Source,
        index: Index,
        opts: Options,
        display: Display,
        on_done: Callable[[Line], None],
    ):
        self.env = env
        self.source = source
        self.index = index
        self.opts = opts
        self.urls: dict[Path, str] = {}  # local images, uploaded
        self.entered = self.printed = 0
        self._lines = self._each_line()  # read as the run takes them (feed)
        self._stopped: KlingError | None = None  # why no more lines were read (file changed)
        self._unanswered = False  # a lookup got no answer: the service is not answering now
        plan = Plan[Line](
            parallel=opts.parallel,
            interval=opts.interval,
            timeout=opts.timeout,
            stall_timeout=opts.stall_timeout,
            force=opts.force,
            target=self._target if opts.output is not None else None,
            before_send=self._sending,
            source=source.identity,
            not_sent=self._not_sent,
            after_save=write_sidecar if opts.sidecar else None,
            feed=self.feed,
        )

        def done(line: Line) -> None:
            if isinstance(line.error, Stalled) and not line.error.hint:
                line.error.hint = RESUME_HINT  # it goes on at the service: a re-run waits again
            on_done(line)

        self.engine = engine_for(env, plan, display, done)

    def shown(self, line: Line) -> None:
        self.printed += 1

    # --- before the run ------------------------------------------------------------------------

    def prepare(self) -> bool:
        """Forget that this run's lines were sent before (--restart: the file's lines as it
        is now, the shard's only with --shard); say whether any line is still to send (for
        the balance warning), looking no further than the first."""
        if self.opts.restart:  # in chunks: the journal is not held while the file is read
            keys = (k for line in self._each_line() for k in (line.key, line.legacy_key) if k)
            while chunk := list(islice(keys, 2000)):
                self.env.journal.batch_forget(chunk)
        return any(self._sends(line) for line in self._each_line())

    def _each_line(self) -> Iterator[Line]:
        return self.source.lines(self.env, self.opts.shard, self.index)

    def upload_images(self, pool: Executor) -> None:
        """Each distinct local image of the lines still to send, once (or not at all, if the
        journal has a fresh URL), before the first send."""
        if not self.index.with_images:
            return
        marked = iter(self.index.with_images)  # in line order, as the lines come
        wanted = next(marked, None)
        paths: set[Path] = set()
        for line in self._each_line():
            if line.number != wanted:
                continue
            wanted = next(marked, None)
            if self._sends(line):
                paths.update(line.request.local_files())
        self.urls = uploads.urls_for(
            self.env.client, self.env.records, self.env.ui, paths, pool=pool
        )

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.engine.run(before=self.upload_images)
        except KeyboardInterrupt as stop:
            signum = interrupts.signal_of(stop)
            in_flight = [line.task_id for line in self.engine.pending() if line.task_id]
            if not in_flight:  # none made yet, or every one made already printed
                raise Interrupted(
                    "interrupted; tasks already made go on at the service",
                    hint="run the same command again: nothing is sent twice",
                    signum=signum,
                ) from None
            again = "the same `kling batch` command (nothing is sent twice)"
            raise interrupted(self.env, in_flight, signum=signum, command=again) from None
        if self._stopped is not None:
            raise self._stopped

    def feed(self) -> bool:
        """Enter the next lines, while the window has room and the engine wants more to send;
        False once every line has entered."""
        engine = self.engine
        while (
            self.entered - self.printed < WINDOW and len(engine.to_send) < 2 * engine.plan.parallel
        ):
            try:
                line = next(self._lines, None)
            except KlingError as exc:  # the file changed: the lines entered still finish
                self._stopped = exc
                return False
            if line is None:
                return False
            self.entered += 1
            self._enter(line)
        return True

    def _enter(self, line: Line) -> None:
        """Put a line where the journal says it stood."""
        engine = self.engine
        entry = self._resume(line)
        if entry is Entry.SEND:
            engine.send(line)
        elif entry is Entry.POLL:
            engine.poll(line)
        elif entry is Entry.FETCH:
            engine.fetch(line)
        else:
            if entry is Entry.UNSURE:
                sent = self._sent(line)
                business_id = sent[1] if sent is not None else None
                line.error = unsure(line, business_id, retrying=self.opts.retry_failed)
            engine.finish(line)

    def _sent(self, line: Line) -> tuple[str | None, str | None] | None:
        """The journal is read as it is, not through Env.try_journal: a batch whose journal
        cannot say what was sent before stops, before it sends anything, rather than send
        every line again (the error names the file and how to move it aside)."""
        return self.env.journal.batch_line(line.key, line.legacy_key)

    def _sends(self, line: Line) -> bool:
        """Whether this run sends the line: never sent (or surely not taken: refused), or,
        with --retry-failed, its task failed. A line whose send is uncertain is not failed:
        it may have made a task."""
        sent = self._sent(line)
        if sent is None:
            return True
        if not self.opts.retry_failed or sent[0] is None:
            return False
        entry = self.env.journal.get(sent[0])
        return entry is not None and entry.view.failed

    def _resume(self, line: Line) -> Entry:
        if self._sends(line):
            return Entry.SEND  # the journal's row, if any, is replaced as it goes
        sent = self._sent(line)
        assert sent is not None
        if sent[0] is None:
            return self._look_up(line, sent[1])
        line.task_id = sent[0]
        entry = self.env.journal.get(sent[0])
        if entry is None:
            return Entry.POLL
        line.view = entry.view  # as last seen: no need to ask again what is final
        if line.view.completed and self.opts.output is not None:
            return self._saved_here(line, [Path(f) for f in entry.files])
        return Entry.DONE if line.view.final else Entry.POLL

    def _look_up(self, line: Line, business_id: str | None) -> Entry:
        """A line an earlier run sent without hearing back: its task looked for by the
        business id of that attempt. Found: followed. The service made none: sent again, with
        the same business id. Not known (no business id, or no answer): left uncertain. After
        one lookup that got no answer (each one retried for seconds), the rest are not asked:
        against a service that is down they would hold the run up one after another."""
        if business_id is None or self._unanswered:
            return Entry.UNSURE
        try:
            task = self.env.client.get_task(business_id, business_id=True)
        except KlingError as exc:
            if not (isinstance(exc, APIError) and exc.status == 404):
                self._unanswered = True
                return Entry.UNSURE
            assert line.body is not None
            line.body["client_business_id"] = business_id
            return Entry.SEND
        self.env.records.found(business_id, task)
        line.task_id, line.view = task.id, task
        if task.completed and self.opts.output is not None:
            return self._saved_here(line, [])
        return Entry.DONE if task.final else Entry.POLL

    def _saved_here(self, line: Line, files: list[Path]) -> Entry:
        """A completed line's video in this run's folder: there already (the journal knows
        it, or it was saved just before a kill, before the journal heard of it), copied from
        where an earlier run saved it (another -o), or else fetched again."""
        assert self.opts.output is not None and line.task_id is not None
        saved = [f for f in files if f.exists()]
        here = [f for f in saved if f.parent == self.opts.output]
        if here:
            line.files = here
            return Entry.DONE
        target = self._target(line)
        if not target.exists() and not (saved and _copy(saved[0], target)):
            return Entry.FETCH
        line.files = [target]
        self.env.records.file(line.task_id, target)
        if self.opts.sidecar:
            write_sidecar(line, target)
        return Entry.DONE

    # --- the engine's hooks --------------------------------------------------------------------

    def _sending(self, lines: list[Line]) -> None:
        """Just before the lines are sent (the engine then marks each one sent, synced):
        their local images are uploaded by now, and their URLs go in."""
        for line in lines:
            if line.request.local_files():
                business_id = (line.body or {}).get("client_business_id")
                line.body = line.request.body(self.urls)
                if business_id is not None:  # a resumed attempt keeps its business id
                    line.body["client_business_id"] = business_id

    def _not_sent(self, line: Line) -> None:
        self.env.records.attempt(lambda journal: journal.batch_not_sent(line.key))

    def _target(self, line: Line) -> Path:
        assert self.opts.output is not None
        name = line.output or f"{line.number:04d}-{download.safe_filename(str(line.task_id))}"
        return self.opts.output / name


def _copy(source: Path, target: Path) -> bool:
    """`source` copied to `target`, whole or not at all (through a temporary file beside it,
    as downloads are, synced before it is renamed into place); False if it could not be."""

    def copy_into(out: BinaryIO) -> None:
        with source.open("rb") as video:
            shutil.copyfileobj(video, out, 1 << 20)

    try:
        write_atomically(target, copy_into, sync=True)
        return True
    except OSError:
        return False


def unsure(line: Line, business_id: str | None, retrying: bool = False) -> SubmitUncertain:
    """What is said of a line an earlier run sent and never heard back about, whose task could
    not be looked for by its business id (an earlier kling gave it none, or the service did not
    answer): it may have made a task, so it is not sent again, by a re-run or by
    --retry-failed (`retrying`). The one place that says it."""
    nor = ", nor by --retry-failed: it is not known to have failed" if retrying else ""
    looked = (
        f"its task could not be looked for under its business id {business_id} just now"
        if business_id
        else "it has no business id to look its task up by (an earlier kling sent it)"
    )
    error = SubmitUncertain(
        f"line {line.number} was sent by an earlier run that never heard back, and {looked}; "
        f"it may have made a task, so it was not sent again{nor}",
        hint="run the same command again to look again (nothing is sent twice)"
        if business_id
        else "look for it in `kling list` (an `uncertain` entry with its prompt) or on the "
        "provider's dashboard; a task it made is saved with `kling download TASK_ID -o DIR`",
    )
    error.business_id = business_id
    return error


@dataclass
class Tally:
    """The counts of the summary, and the first lines that did not complete, kept as lines
    are printed (in line order): the exit code is that of the first of those."""

    lines: int = 0
    completed: int = 0
    failed: int = 0  # lines that did not complete, whatever the reason
    code: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # of those, by kind
    examples: list[tuple[int, int, str, str | None]] = field(default_factory=list)
    keep: int = 20

    def add(self, line: Line) -> None:
        self.lines += 1
        if line.code == 0:
            self.completed += 1
            return
        self.failed += 1
        self.code = self.code or line.code
        self.outcomes[present.outcome(line.code)] += 1
        if len(self.examples) < self.keep:
            hint = line.error.hint if line.error else None
            self.examples.append((line.number, line.code, line.why_not_completed(), hint))

    def counts(self) -> str:
        """`3 completed`, `2 completed, 1 failed`, `4 not finished`: the kinds there are."""
        parts = [f"{self.completed} completed"] if self.completed else []
        return ", ".join(parts + present.outcome_counts(self.outcomes))
