"""The local task journal: every task this machine submitted, in SQLite.

A task id is written the moment the service returns it, so nothing that fails later can lose
it. Several kling processes may write at once (parallel CI jobs): WAL mode and a busy timeout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import tasks
from .errors import ExitCode, LocalFileError
from .paths import JOURNAL_FILE as JOURNAL_FILE  # re-exported: their home is kling_cli.paths
from .paths import UNCERTAIN as UNCERTAIN

ATTEMPT_PREFIX = "attempt-"
SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    submitted_at REAL NOT NULL,
    updated_at  REAL NOT NULL,
    base_url    TEXT NOT NULL,
    params      TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    INTEGER,
    video_url   TEXT,
    files       TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    task        TEXT  -- the service's latest answer, as JSON
);
CREATE INDEX IF NOT EXISTS tasks_submitted ON tasks (submitted_at DESC);
-- One row per batch line ever sent: written (task_id NULL) before its request goes out, so a
-- re-run never sends a line twice, even after SIGKILL.
CREATE TABLE IF NOT EXISTS batch_lines (
    key         TEXT PRIMARY KEY,
    task_id     TEXT,
    line        INTEGER NOT NULL,
    source      TEXT NOT NULL,
    sent_at     REAL NOT NULL
);
-- Local images already uploaded: content hash -> URL, reused while fresh.
CREATE TABLE IF NOT EXISTS uploads (
    sha256      TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    uploaded_at REAL NOT NULL
);
"""
UPLOAD_FRESH_SECONDS = 6 * 3600  # the service does not say how long upload URLs live: be modest
# Deferred writes (a batch's status changes) wait at most this long, or this many, for a
# transaction to ride in.
DEFER_SECONDS = 1.0
DEFER_MAX = 500


class JournalError(LocalFileError):
    kind = "journal"


class JournalDamaged(JournalError):
    """The file is not a database, or a damaged one: only the user can move it aside. Like a
    config file that does not parse, a local file to fix (exit 2), not a bug."""

    exit_code = ExitCode.USAGE


# SQLITE_CORRUPT and SQLITE_NOTADB; their messages for Pythons without `sqlite_errorcode`
DAMAGED_CODES = (11, 26)
DAMAGED_MESSAGES = ("file is not a database", "database disk image is malformed")


@dataclass(frozen=True)
class Entry:
    id: str
    submitted_at: float
    updated_at: float
    base_url: str
    params: dict[str, Any]
    status: str
    progress: int | None
    video_url: str | None
    files: list[str]
    error: str | None
    task: dict[str, Any]  # the service's latest answer

    @property
    def view(self) -> tasks.TaskView:
        return tasks.TaskView.of(self.task)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "state": self.view.state.value,
            "progress": self.progress,
            "submitted_at": int(self.submitted_at),
            "updated_at": int(self.updated_at),
            "base_url": self.base_url,
            "model": self.params.get("model"),
            "prompt": self.params.get("prompt"),
            "params": self.params,
            "video_url": self.video_url,
            "output_files": self.files,
            "error": self.error,
        }


class Journal:
    def __init__(self, path: Path):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        # With `defer_writes`, a task's status changes are not a transaction (and a commit)
        # each: they wait, in order, and go in with the next write (a batch makes two synced
        # ones a line, and one when a video is saved), or after DEFER_SECONDS. Losing them to
        # a crash costs a poll on resume.
        self.defer_writes = False
        self._deferred: list[Callable[[sqlite3.Connection], object]] = []
        self._deferred_since = 0.0
        self._grouping = False  # inside group(): writes share its transaction
        self._group_open = False  # ... which has begun
        self._group_durable = False  # ... synced (FULL) when it ends

    @contextmanager
    def group(self) -> Iterator[None]:
        """Writes made inside are one transaction, committed when it ends, and synced then if
        one of them asked to be: several sends' marks before their requests leave, or several
        tasks' ids as their answers come back, for one sync instead of one each. A write that
        fails is undone alone (each is a savepoint)."""
        if self._grouping:
            yield
            return
        self._grouping = True
        try:
            yield
        finally:
            self._grouping = False
            self._end_group()

    def _end_group(self) -> None:
        if not self._group_open:
            return
        self._group_open = False
        conn = self.conn
        with self._errors():
            try:
                conn.execute("COMMIT")
            finally:
                if self._group_durable:
                    self._group_durable = False
                    conn.execute("PRAGMA synchronous = NORMAL")

    def _join_group(self, conn: sqlite3.Connection, durable: bool) -> None:
        """Begin the group's transaction, or go on in it. The level of syncing cannot change
        inside a transaction: a durable write in a group begun without commits that part."""
        if self._group_open and durable and not self._group_durable:
            self._end_group()
        if not self._group_open:
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                conn.execute("PRAGMA synchronous = NORMAL")
                raise
            self._group_open, self._group_durable = True, durable

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            with self._errors():
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                try:
                    conn.execute("PRAGMA busy_timeout = 30000")
                    conn.execute("PRAGMA journal_mode = WAL")
                    # NORMAL: a commit survives a crash of kling (SIGKILL included) without an
                    # fsync per poll; writes that must also survive a power cut ask for FULL.
                    conn.execute("PRAGMA synchronous = NORMAL")
                    conn.executescript(SCHEMA)
                    _migrate(conn)
                except BaseException:
                    conn.close()  # a damaged file: the next use tries afresh
                    raise
                self._conn = conn
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code in DAMAGED_CODES or str(exc) in DAMAGED_MESSAGES:
                raise JournalDamaged(
                    f"the task journal {self.path} is damaged ({exc})",
                    hint=f"move it aside and kling starts a new one: {self._move_aside()}",
                ) from None
            raise JournalError(f"the task journal {self.path} failed: {exc}") from None
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"the task journal {self.path} failed: {exc}") from None

    def _move_aside(self) -> str:
        """The command that moves the journal aside, its WAL files too: a WAL left behind
        would be replayed into the new journal."""
        files = [self.path, *(Path(f"{self.path}{end}") for end in ("-wal", "-shm"))]
        return "; ".join(f"mv {f} {f}.damaged" for f in files if f == self.path or f.exists())

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction. `durable`: synced to disk before it returns (a new task id),
        or, inside group(), when the group ends."""
        conn = self.conn
        if self._grouping:
            with self._errors():
                self._join_group(conn, durable)
                conn.execute("SAVEPOINT write")
                try:
                    deferred, self._deferred = self._deferred, []
                    for write in deferred:
                        write(conn)
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    raise
                conn.execute("RELEASE write")
            return
        with self._errors():
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue.
            conn.execute("BEGIN IMMEDIATE")
            try:
                deferred, self._deferred = self._deferred, []
                for write in deferred:
                    write(conn)
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")

    def record_attempt(self, base_url: str, params: Mapping[str, Any], reason: str) -> str:
        """A generation request whose answer never came: it may have made a task. Listed
        (status `uncertain`, under an id of its own) so `kling list` shows what was tried."""
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        attempt_id = f"{ATTEMPT_PREFIX}{stamp}-{os.urandom(3).hex()}"
        with self._write(durable=True) as conn:
            conn.execute(
                "INSERT INTO tasks (id, submitted_at, updated_at, base_url, params, status,"
                " error, task) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    attempt_id,
                    now,
                    now,
                    base_url,
                    json.dumps(dict(params), ensure_ascii=False),
                    UNCERTAIN,
                    reason,
                    json.dumps({"id": attempt_id, "status": UNCERTAIN}),
                ),
            )
        return attempt_id

    def record_submitted(
        self,
        task: tasks.TaskView,
        base_url: str,
        params: Mapping[str, Any],
        batch_key: str | None = None,
    ) -> None:
        """A new task, synced to disk. `batch_key`: the batch line that made it, marked sent
        with its id in the same transaction (one sync, not two)."""
        now = time.time()
        with self._write(durable=True) as conn:
            if batch_key is not None:
                conn.execute(
                    "UPDATE batch_lines SET task_id = ? WHERE key = ?", (task.id, batch_key)
                )
            conn.execute(
                "INSERT OR IGNORE INTO tasks (id, submitted_at, updated_at, base_url, params,"
                " status, progress, task) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task.id,
                    now,
                    now,
                    base_url,
                    json.dumps(dict(params), ensure_ascii=False),
                    task.status,
                    task.progress,
                    json.dumps(dict(task.raw), ensure_ascii=False),
                ),
            )

    def _later(self) -> None:
        """The write just queued may wait for the next transaction (see `defer_writes`)."""
        if not self.defer_writes:
            with self._write():
                pass  # the transaction takes `write` with it
        elif len(self._deferred) == 1:
            self._deferred_since = time.monotonic()
        elif (
            len(self._deferred) >= DEFER_MAX
            or time.monotonic() - self._deferred_since >= DEFER_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Write what waits (deferred writes), now."""
        if self._deferred:
            with self._write():
                pass

    def update(self, task: tasks.TaskView) -> None:
        """Bring a known task up to date with the service's latest view (unknown ids: ignored)."""
        if not task.id:
            return
        error = task.error_text if task.failed else None
        now = time.time()
        self._deferred.append(
            lambda conn: conn.execute(
                "UPDATE tasks SET status = ?, progress = COALESCE(?, progress),"
                " video_url = COALESCE(?, video_url), error = ?, updated_at = ?, task = ?"
                " WHERE id = ?",
                (
                    task.status,
                    task.progress,
                    task.video_url,
                    error,
                    now,
                    json.dumps(dict(task.raw), ensure_ascii=False),
                    task.id,
                ),
            )
        )
        self._later()

    def add_file(self, task_id: str, path: Path) -> None:
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT files FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                return
            files = json.loads(row[0])
            if str(path) not in files:
                files.append(str(path))
            conn.execute(
                "UPDATE tasks SET files = ?, updated_at = ? WHERE id = ?",
                (json.dumps(files), now, task_id),
            )

        self._deferred.append(write)
        with self._write():
            pass  # now, with what waits: a saved video is on record as soon as it is there

    def entries(self, limit: int | None = None) -> list[Entry]:
        sql = "SELECT * FROM tasks ORDER BY submitted_at DESC, rowid DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        self.flush()
        conn = self.conn
        with self._errors():
            return [_entry(row) for row in conn.execute(sql, args)]

    def get(self, task_id: str) -> Entry | None:
        self.flush()
        conn = self.conn
        with self._errors():
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _entry(row) if row else None

    # --- batch lines -------------------------------------------------------------------------

    def batch_line(self, key: str) -> tuple[str | None] | None:
        """None: never sent. (task_id,): sent, with its id, or (None,) if no answer came back."""
        conn = self.conn
        with self._errors():
            row = conn.execute("SELECT task_id FROM batch_lines WHERE key = ?", (key,)).fetchone()
        return (row[0],) if row else None

    def batch_sending(self, key: str, line: int, source: str) -> None:
        with self._write(durable=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batch_lines (key, task_id, line, source, sent_at)"
                " VALUES (?, NULL, ?, ?, ?)",
                (key, line, source, time.time()),
            )

    def batch_not_sent(self, key: str) -> None:
        """The request surely made no task (refused, or never left): the line may go again."""
        with self._write() as conn:
            conn.execute("DELETE FROM batch_lines WHERE key = ?", (key,))

    def batch_forget_source(self, source: str, k: int = 1, n: int = 1) -> None:
        """Forget the lines of `source` sent before; of shard `k`/`n` only: those with
        (line - 1) % n == k - 1 (1/1: all of them)."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM batch_lines WHERE source = ? AND (line - 1) % ? = ?",
                (source, n, k - 1),
            )

    # --- the upload cache ----------------------------------------------------------------------

    def cached_upload(self, sha256: str) -> str | None:
        conn = self.conn
        with self._errors():
            row = conn.execute(
                "SELECT url FROM uploads WHERE sha256 = ? AND uploaded_at > ?",
                (sha256, time.time() - UPLOAD_FRESH_SECONDS),
            ).fetchone()
        return row[0] if row else None

    def remember_upload(self, sha256: str, url: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO uploads (sha256, url, uploaded_at) VALUES (?, ?, ?)",
                (sha256, url, time.time()),
            )

    def close(self) -> None:
        """Close it; deferred writes not flushed (Env.close flushes them first) are lost."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a journal made by an earlier kling up to this schema (columns only ever added)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    if "task" not in columns:  # added in 0.1.0's batch work: the service's latest answer
        conn.execute("ALTER TABLE tasks ADD COLUMN task TEXT")


def _entry(row: tuple[Any, ...]) -> Entry:
    (tid, submitted, updated, base_url, params, status, progress, url, files, error, task) = row
    return Entry(
        tid,
        submitted,
        updated,
        base_url,
        json.loads(params),
        status,
        progress,
        url,
        json.loads(files),
        error,
        json.loads(task) if task else {"id": tid, "status": status},
    )
