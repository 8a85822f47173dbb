"""Batch generation: read and check JSON Lines, then submit, poll and download them all.

The run is resumable and never pays twice: before a line's request goes out, its key (the
file's identity, the line's number and its text) is written to the journal; the task id follows
the moment it comes back. A re-run skips every line already sent and takes up polling and
downloading where they stopped. The sending, polling and saving are the lifecycle engine's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from . import config, download, request, uploads
from .env import Env
from .errors import Interrupted, LocalFileError, SubmitUncertain, UsageError
from .journal import Journal
from .lifecycle import Engine, Job, Plan

FIELDS = (*request.LINE_KEYS, "output")


@dataclass(eq=False, kw_only=True)
class Line(Job):
    """One input line, checked, and where it stands. Its `order` is its line number."""

    key: str  # the line's journal key: the file's identity, the line's number and its text
    text: str
    request: request.Request
    output: str | None = None  # the file name the line asked for

    @property
    def number(self) -> int:
        return self.order

    def document(self) -> dict[str, Any]:
        """What --json prints for the line: the task as the service gave it, or the error."""
        doc: dict[str, Any] = {"line": self.number}
        if self.view:
            doc.update(self.view.raw)
            doc["line"] = self.number
            if self.files:
                doc["output_files"] = [str(f) for f in self.files]
        if self.error is not None:
            doc["error"] = self.error.document()
            if self.task_id:
                doc.setdefault("id", self.task_id)
        return doc


@dataclass(frozen=True)
class Shard:
    """`--shard K/N`: this run takes the lines L with (L - 1) % N == K - 1, so N runs (CI
    jobs) share one file and no line is done twice. 1/1 is the whole file."""

    k: int = 1
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise UsageError(f"--shard must be K/N, e.g. 2/3 (shard 2 of 3), not {text!r}")
        k, n = int(match[1]), int(match[2])
        if n < 1 or not 1 <= k <= n:
            raise UsageError(f"--shard {text}: K/N needs 1 <= K <= N (e.g. 1/{max(n, 2)})")
        return cls(k, n)

    @property
    def whole(self) -> bool:
        return self.n == 1

    def takes(self, number: int) -> bool:
        return (number - 1) % self.n == self.k - 1

    def overlaps(self, other: Shard) -> bool:
        """Whether the two take a line in common: with the same N only the same K does; with
        different Ns (or the whole file) there is always one."""
        return self.n != other.n or self.k == other.k

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


@dataclass
class Options:
    parallel: int = 4
    output: Path | None = None
    sidecar: bool = False
    restart: bool = False
    force: bool = False
    timeout: float | None = None
    interval: float | None = None
    shard: Shard = Shard()


# --- reading and checking ------------------------------------------------------------------


def source_identity(path: Path | None, text: str) -> str:
    """Which file this is: its absolute path; for stdin, its content."""
    if path is None:
        return "stdin:" + hashlib.sha256(text.encode()).hexdigest()
    return str(path.resolve())


def parse(text: str, source: str, base_dir: Path, env: Env, shard: Shard = Shard()) -> list[Line]:
    """Every line checked before anything is sent: all problems at once, with line numbers.
    Each shard checks the whole file, so a bad line stops all N runs before any pays; the
    lines returned are the shard's."""
    lines: list[Line] = []
    problems: list[str] = []
    outputs: dict[str, int] = {}
    seen = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        seen += 1
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
        if shard.takes(number):
            lines.append(line)
    if problems:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        raise UsageError(
            f"{len(problems)} bad line{'s' if len(problems) > 1 else ''}; nothing was sent:\n  "
            + "\n  ".join(shown)
        )
    if not seen:
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
    return Line(number, key=key, body=wanted.body(), text=raw, request=wanted, output=output)


@contextmanager
def one_run_at_a_time(env: Env, source: str, shard: Shard = Shard()) -> Iterator[None]:
    """One run of a batch file's lines at a time: two would both send every line not yet
    recorded, and pay twice. Shards of one file with the same N take no line in common and
    run side by side; any other pair (the same shard, different Ns, or the whole file) is
    refused. Each run holds a lock file of its own (`batch-HASH-K-N.lock`, the whole file's
    is `batch-HASH.lock`); the guard file makes looking at the others and taking one's own
    a single step. The locks are the kernel's (flock), so a killed run never leaves one held."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    folder = config.data_dir(env.environ) / "locks"
    name = "batch-" + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    own = folder / (f"{name}.lock" if shard.whole else f"{name}-{shard.k}-{shard.n}.lock")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        guard = os.open(folder / f"{name}.guard", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LocalFileError(f"cannot make the batch lock in {folder}: {exc.strerror}") from None
    fd = -1
    try:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)  # held for a moment by each run as it starts
            for path in folder.glob(f"{name}*.lock"):
                other = _shard_of(path.name, name)
                if other is not None and other.overlaps(shard) and path != own:
                    _refuse_if_held(path, other)
            fd = os.open(own, os.O_RDWR | os.O_CREAT, 0o600)
            _refuse_if_held(own, shard, fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            raise LocalFileError(f"cannot take the batch lock in {folder}: {exc}") from None
        finally:
            os.close(guard)  # releases the guard: the next run may look
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock


def _shard_of(file_name: str, name: str) -> Shard | None:
    """The shard a lock file is for (`NAME.lock`: the whole file)."""
    rest = file_name.removeprefix(name).removesuffix(".lock")
    if not rest:
        return Shard()
    match = re.fullmatch(r"-(\d+)-(\d+)", rest)
    return Shard(int(match[1]), int(match[2])) if match else None


def _refuse_if_held(path: Path, shard: Shard, fd: int = -1) -> None:
    """Take the lock on `path` (keeping it if `fd` is given), or refuse: another run holds it."""
    import fcntl

    mine = fd >= 0
    if not mine:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            what = "this batch file" if shard.whole else f"shard {shard} of this batch file"
            raise UsageError(
                f"another kling (pid {holder}) is running {what}; nothing was sent",
                hint="wait for it to finish, then run this again: it picks up where that one "
                "stopped and sends nothing twice",
            ) from None
    finally:
        if not mine:
            os.close(fd)  # only looked: its lock (if we got it) goes with it


# --- running -------------------------------------------------------------------------------


class Runner:
    """A batch on the lifecycle engine: each line enters where the journal says it stood
    (`resume`), local images are uploaded once, and the engine does the rest."""

    def __init__(
        self,
        env: Env,
        lines: list[Line],
        opts: Options,
        source: str,
        on_change: Callable[[Line], None],
        on_done: Callable[[Line], None],
        on_bytes: Callable[[Line], None] = lambda line: None,
    ):
        self.env = env
        self.lines = lines
        self.opts = opts
        self.source = source
        plan = Plan[Line](
            parallel=opts.parallel,
            interval=opts.interval,
            timeout=opts.timeout,
            force=opts.force,
            target=self._target if opts.output is not None else None,
            before_send=self._sending,
            not_sent=self._not_sent,
            after_save=write_sidecar if opts.sidecar else None,
        )
        self.engine = Engine(env, plan, on_change, on_done, on_bytes)

    @property
    def to_send(self) -> Collection[Line]:
        return self.engine.to_send

    def resume(self) -> None:
        """Sort lines into: already done, to poll (sent before), unsure, and to send."""
        if self.opts.restart:
            shard = self.opts.shard
            forget = partial(Journal.batch_forget_source, source=self.source, k=shard.k, n=shard.n)
            self.env.try_journal(forget)
        engine = self.engine
        for line in self.lines:
            sent = self.env.try_journal(partial(Journal.batch_line, key=line.key))
            if sent is None:
                engine.send(line)
            elif sent[0] is None:
                line.error = SubmitUncertain(
                    f"line {line.number} was being sent when an earlier run stopped; "
                    "it may have made a task, so it was not sent again",
                    hint="look for it with `kling list`; --restart sends every line again",
                )
                engine.finish(line)
            else:
                line.task_id = sent[0]
                entry = self.env.try_journal(partial(Journal.get, task_id=sent[0]))
                if entry is None:
                    engine.poll(line)
                    continue
                line.view = entry.view  # as last seen: no need to ask again what is final
                line.files = [Path(f) for f in entry.files if Path(f).exists()]
                if line.view.completed and self.opts.output and not line.files:
                    engine.fetch(line)
                elif line.view.final:
                    engine.finish(line)
                else:
                    engine.poll(line)

    def upload_images(self, pool: Executor) -> None:
        """Each distinct local image once (or not at all, if the journal has a fresh URL)."""
        waiting = [line for line in self.engine.to_send if line.request.local_files()]
        paths = [path for line in waiting for path in line.request.local_files()]
        urls = uploads.urls_for(self.env, paths, pool=pool)
        for line in waiting:
            line.body = line.request.body(urls)

    def run(self) -> None:
        try:
            self.engine.run(before=self.upload_images)
        except KeyboardInterrupt:
            raise Interrupted(
                "interrupted; tasks already made go on at the service",
                hint="run the same command again: nothing is sent twice",
            ) from None

    def _sending(self, line: Line) -> None:
        """Written (synced) before the line's request leaves: a crash from here on never
        sends it again."""
        self.env.try_journal(
            partial(Journal.batch_sending, key=line.key, line=line.number, source=self.source)
        )

    def _not_sent(self, line: Line) -> None:
        self.env.try_journal(partial(Journal.batch_not_sent, key=line.key))

    def _target(self, line: Line) -> Path:
        assert self.opts.output is not None
        name = line.output or f"{line.number:04d}-{download.safe_filename(str(line.task_id))}"
        return self.opts.output / name


def write_sidecar(line: Line, video: Path) -> Path:
    """`NAME.json` beside `NAME.mp4`: what made the video, so a folder explains itself."""
    task = line.view
    document = {
        "line": line.number,
        "task_id": line.task_id,
        "prompt": line.request.prompt,
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
