"""The local task journal: every task this machine submitted, in SQLite.

A task id is written the moment the service returns it, so nothing that fails later can lose
it. Several kling processes may write at once (parallel CI jobs): WAL mode and a busy timeout.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..paths import JOURNAL_FILE as JOURNAL_FILE  # re-exported: their home is kling_cli.paths
from .sqlite import JournalDamaged as JournalDamaged  # re-exported: their home is store.py
from .sqlite import JournalError as JournalError
from .sqlite import Store

if TYPE_CHECKING:
    from ..api import tasks

ATTEMPT_PREFIX = "attempt-"
# The status of a request that may have made a task whose id never came back
# (Journal.record_attempt): not a task id anyone can use.
UNCERTAIN = "uncertain"
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
    task        TEXT,  -- the service's latest answer, as JSON
    business_id TEXT,  -- the send's client_business_id (API.md 1c)
    file_sizes  TEXT   -- {path: bytes} of the files saved, as JSON
);
CREATE INDEX IF NOT EXISTS tasks_submitted ON tasks (submitted_at DESC);
-- One row per batch line ever sent: written (task_id NULL) before its request goes out, so a
-- re-run never sends a line twice, even after SIGKILL. `key`: what the line asks, wherever it
-- stands: REQUEST_SHA256:OCCURRENCE (batch/lines.py). A row an earlier kling wrote has the
-- SHA-256 of its file's path, number and text instead: still found for that unchanged line.
-- `line` and `source`: where it was when last sent (its number, the file or stdin:SHA256).
CREATE TABLE IF NOT EXISTS batch_lines (
    key         TEXT PRIMARY KEY,
    task_id     TEXT,
    line        INTEGER NOT NULL,
    source      TEXT NOT NULL,
    sent_at     REAL NOT NULL,
    business_id TEXT  -- the business id of the line's attempt (kept when a run resumes it)
);
-- Local images already uploaded: content hash -> URL, reused while fresh.
CREATE TABLE IF NOT EXISTS uploads (
    sha256      TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    uploaded_at REAL NOT NULL
);
"""
UPLOAD_FRESH_SECONDS = 6 * 3600  # the service does not say how long upload URLs live: be modest
# Task ids a shell may type for the user (Journal.task_ids): one word with no quoting, as bash
# inserts a completion as is. A hostile id such as `x;rm -rf ~` from a misbehaving service
# never is. The GLOB is the same set, for the query.
PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]+")
NOT_PLAIN_GLOB = "*[^A-Za-z0-9_.-]*"
PLAIN_STATUS_MAX = 32  # a longer status is not shown beside its id


class Entry(NamedTuple):  # not a dataclass: a TAB imports this module, and dataclasses is slow
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
    business_id: str | None = None

    @property
    def view(self) -> tasks.TaskView:
        from ..api.tasks import TaskView

        return TaskView.of(self.task)

    @property
    def uncertain(self) -> bool:
        """A send whose answer never came: it may have made a task, under `business_id`."""
        return self.status == UNCERTAIN

    @property
    def shown_id(self) -> str:
        """What names it for `kling status/wait/download`: the task id, or for an uncertain
        send its business id (an attempt's own id is nobody's to use)."""
        return self.business_id if self.uncertain and self.business_id else self.id

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.shown_id,
            "status": self.status,
            "state": UNCERTAIN if self.uncertain else self.view.state.value,
            "business_id": self.business_id,
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


class Journal(Store):
    """The journal's records: tasks, batch lines, uploaded images."""

    schema = SCHEMA

    def migrate(self, conn: sqlite3.Connection) -> None:
        _migrate(conn)

    def sending(
        self,
        base_url: str,
        params: Mapping[str, Any],
        reason: str = "",
        line: tuple[str, int, str] | None = None,
    ) -> str:
        """The mark of a generation request about to leave, synced before it does: until its
        answer is recorded (`record_submitted` with this mark) it may have made a task, so
        `kling list` shows it as `uncertain`, under its business id. `line`: the batch line
        (key, number, source) that sends it, marked sent in the same transaction, with the
        business id of this attempt. Returns the mark."""
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        mark = f"{ATTEMPT_PREFIX}{stamp}-{os.urandom(4).hex()}"
        business_id = params.get("client_business_id")
        with self._write(durable=True) as conn:
            if line is not None:
                # A line sent again under the business id of its earlier attempt (the re-run
                # looked that up, and the service had no task under it): this send's row
                # replaces that attempt's `uncertain` one.
                conn.execute(
                    "DELETE FROM tasks WHERE status = ? AND business_id = ? AND business_id IN"
                    " (SELECT business_id FROM batch_lines WHERE key = ? AND task_id IS NULL)",
                    (UNCERTAIN, business_id, line[0]),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO batch_lines"
                    " (key, task_id, line, source, sent_at, business_id)"
                    " VALUES (?, NULL, ?, ?, ?, ?)",
                    (*line, now, business_id if isinstance(business_id, str) else None),
                )
            conn.execute(
                "INSERT INTO tasks (id, submitted_at, updated_at, base_url, params, status,"
                " error, task, business_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    mark,
                    now,
                    now,
                    base_url,
                    json.dumps(dict(params), ensure_ascii=False),
                    UNCERTAIN,
                    reason or "sent; no answer recorded (kling stopped, or the answer was lost)",
                    json.dumps({"id": mark, "status": UNCERTAIN}),
                    business_id if isinstance(business_id, str) else None,
                ),
            )
        return mark

    def uncertain(self, mark: str, reason: str) -> None:
        """Why the send of `mark` is uncertain (its answer was lost, and so on)."""
        with self._write() as conn:
            conn.execute("UPDATE tasks SET error = ? WHERE id = ?", (reason, mark))

    def not_sent(self, mark: str) -> None:
        """The request of `mark` surely made no task (refused, or it never left)."""
        with self._write() as conn:
            conn.execute("DELETE FROM tasks WHERE id = ? AND status = ?", (mark, UNCERTAIN))

    def resolve(self, business_id: str, task: tasks.TaskView, base_url: str) -> None:
        """The uncertain send of `business_id` made `task`: its row is the task's now."""
        entry = self.by_business_id(business_id)
        if entry is not None and entry.uncertain:
            self.record_submitted(task, entry.base_url or base_url, entry.params, mark=entry.id)
        with self._write() as conn:  # a batch line that waited for it knows its task now
            conn.execute(
                "UPDATE batch_lines SET task_id = ? WHERE business_id = ? AND task_id IS NULL",
                (task.id, business_id),
            )

    def by_business_id(self, business_id: str) -> Entry | None:
        """The newest row sent with this business id."""
        conn = self.conn
        with self._errors():
            row = conn.execute(
                "SELECT * FROM tasks WHERE business_id = ? ORDER BY submitted_at DESC, rowid DESC",
                (business_id,),
            ).fetchone()
        return _entry(row) if row else None

    def record_submitted(
        self,
        task: tasks.TaskView,
        base_url: str,
        params: Mapping[str, Any],
        batch_key: str | None = None,
        mark: str | None = None,
    ) -> None:
        """A new task, synced to disk: in place of its send's `mark`. `batch_key`: the batch
        line that made it, marked sent with its id in the same transaction (one sync)."""
        now = time.time()
        with self._write(durable=True) as conn:
            if batch_key is not None:
                conn.execute(
                    "UPDATE batch_lines SET task_id = ? WHERE key = ?", (task.id, batch_key)
                )
            if mark is not None:  # the send is answered: its row is the task's now
                conn.execute("DELETE FROM tasks WHERE id = ?", (task.id,))
                conn.execute(
                    "UPDATE tasks SET id = ?, status = ?, progress = ?, error = NULL, task = ?,"
                    " updated_at = ? WHERE id = ?",
                    (
                        task.id,
                        task.status,
                        task.progress,
                        json.dumps(dict(task.raw), ensure_ascii=False),
                        now,
                        mark,
                    ),
                )
                if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task.id,)).fetchone():
                    return
            conn.execute(
                "INSERT OR IGNORE INTO tasks (id, submitted_at, updated_at, base_url, params,"
                " status, progress, task, business_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task.id,
                    now,
                    now,
                    base_url,
                    json.dumps(dict(params), ensure_ascii=False),
                    task.status,
                    task.progress,
                    json.dumps(dict(task.raw), ensure_ascii=False),
                    _business_id(params),
                ),
            )

    def update(self, task: tasks.TaskView) -> None:
        """Bring a known task up to date with the service's latest view (unknown ids: ignored)."""
        if not task.id:
            return
        error = task.error_text if task.failed else None
        with self._write() as conn:
            conn.execute(
                "UPDATE tasks SET status = ?, progress = COALESCE(?, progress),"
                " video_url = COALESCE(?, video_url), error = ?, updated_at = ?, task = ?"
                " WHERE id = ?",
                (
                    task.status,
                    task.progress,
                    task.video_url,
                    error,
                    time.time(),
                    json.dumps(dict(task.raw), ensure_ascii=False),
                    task.id,
                ),
            )

    def add_file(self, task_id: str, path: Path) -> None:
        """A video saved for the task, and its size (so a re-run knows it as the task's own)."""
        size = path.stat().st_size if path.exists() else None
        with self._write() as conn:
            row = conn.execute(
                "SELECT files, file_sizes FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
            if row is None:
                return
            files, sizes = json.loads(row[0]), json.loads(row[1] or "{}")
            if str(path) not in files:
                files.append(str(path))
            sizes[str(path)] = size
            conn.execute(
                "UPDATE tasks SET files = ?, file_sizes = ?, updated_at = ? WHERE id = ?",
                (json.dumps(files), json.dumps(sizes), time.time(), task_id),
            )

    def saved_as(self, task_id: str, path: Path) -> bool:
        """Whether `path` is the video this journal saved for the task, as it was saved (the
        same size): a re-run finds it done instead of refusing to overwrite it."""
        conn = self.conn
        with self._errors():
            row = conn.execute("SELECT file_sizes FROM tasks WHERE id = ?", (task_id,)).fetchone()
        size = json.loads(row[0] or "{}").get(str(path.resolve())) if row else None
        try:
            return size is not None and path.is_file() and path.stat().st_size == size
        except OSError:
            return False

    def entries(self, limit: int | None = None) -> list[Entry]:
        sql = "SELECT * FROM tasks ORDER BY submitted_at DESC, rowid DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        conn = self.conn
        with self._errors():
            return [_entry(row) for row in conn.execute(sql, args)]

    def task_ids(
        self, prefix: str, given: Collection[str] = (), limit: int = 50
    ) -> list[tuple[str, str]]:
        """The ids a TAB offers: tasks whose id starts with `prefix`, newest first (the order
        of `entries`), at most `limit`, leaving out those in `given` (already on the line),
        each with its status ("" unless a plain word). Only plain words (PLAIN_WORD) are
        offered, and no `uncertain` row: a send whose answer never came has no task id."""
        if prefix and not PLAIN_WORD.fullmatch(prefix):
            return []  # no plain id starts with it
        left_out = {".", "..", *given}
        conn = self.conn
        with self._errors():
            rows = conn.execute(
                "SELECT id, status FROM tasks WHERE substr(id, 1, ?) = ? AND id != ''"
                " AND id NOT GLOB ? AND status != ? ORDER BY submitted_at DESC, rowid DESC"
                " LIMIT ?",
                (len(prefix), prefix, NOT_PLAIN_GLOB, UNCERTAIN, limit + len(left_out)),
            ).fetchall()
        found = []
        for task_id, status in rows:
            if not isinstance(task_id, str) or not PLAIN_WORD.fullmatch(task_id):
                continue  # (the GLOB stops at a NUL, the pattern does not)
            if task_id in left_out:
                continue
            plain = (
                isinstance(status, str)
                and PLAIN_WORD.fullmatch(status)
                and len(status) <= PLAIN_STATUS_MAX
            )
            found.append((task_id, status if plain else ""))
        return found[:limit]

    def count(self) -> int:
        """How many tasks the journal holds (`kling list` says how many it left out)."""
        conn = self.conn
        with self._errors():
            return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

    def get(self, task_id: str) -> Entry | None:
        conn = self.conn
        with self._errors():
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _entry(row) if row else None

    # --- batch lines -------------------------------------------------------------------------

    def batch_line(
        self, key: str, legacy: str | None = None
    ) -> tuple[str | None, str | None] | None:
        """None: never sent. (task_id, business_id): sent, with its task's id, or None for it
        if no answer came back; and the business id of that attempt (None from an earlier
        kling). `legacy`: the key an earlier kling gave the line, when `key` is not found."""
        conn = self.conn
        with self._errors():
            rows = {
                row[0]: (row[1], row[2])
                for row in conn.execute(
                    "SELECT key, task_id, business_id FROM batch_lines WHERE key IN (?, ?)",
                    (key, legacy),
                )
            }
        for wanted in (key, legacy):
            if wanted in rows:
                return rows[wanted]
        return None

    def batch_not_sent(self, key: str) -> None:
        """The request surely made no task (refused, or never left): the line may go again."""
        with self._write() as conn:
            conn.execute("DELETE FROM batch_lines WHERE key = ?", (key,))

    def batch_forget(self, keys: Iterable[str]) -> None:
        """Forget that these lines were sent (--restart): the next run sends them again."""
        with self._write() as conn:
            conn.executemany("DELETE FROM batch_lines WHERE key = ?", ((k,) for k in keys))

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


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a journal made by an earlier kling up to this schema (columns only ever added)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    if "task" not in columns:  # added in 0.1.0's batch work: the service's latest answer
        conn.execute("ALTER TABLE tasks ADD COLUMN task TEXT")
    if "business_id" not in columns:  # added with business ids (API.md 1c)
        conn.execute("ALTER TABLE tasks ADD COLUMN business_id TEXT")
    if "file_sizes" not in columns:  # added so that re-runs know the files as the task's own
        conn.execute("ALTER TABLE tasks ADD COLUMN file_sizes TEXT")
    line_columns = {row[1] for row in conn.execute("PRAGMA table_info(batch_lines)")}
    if "business_id" not in line_columns:  # added with business ids (API.md 1c)
        conn.execute("ALTER TABLE batch_lines ADD COLUMN business_id TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS tasks_business ON tasks (business_id)")


def _business_id(params: Mapping[str, Any]) -> str | None:
    value = params.get("client_business_id")
    return value if isinstance(value, str) else None


def _entry(row: tuple[Any, ...]) -> Entry:
    (tid, submitted, updated, base_url, params, status, progress, url, files, error, task) = row[
        :11
    ]
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
        row[11] if len(row) > 11 else None,
    )
