"""The local task journal: every task this machine submitted, in SQLite.

A task id is written the moment the service returns it, so nothing that fails later can lose
it. Several kling processes may write at once (parallel CI jobs): WAL mode and a busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..paths import JOURNAL_FILE as JOURNAL_FILE  # re-exported: their home is kling_cli.paths
from .ids import NEWEST_FIRST
from .ids import UNCERTAIN as UNCERTAIN  # re-exported: its home is store/ids.py
from .sqlite import JournalDamaged as JournalDamaged  # re-exported: their home is store.py
from .sqlite import JournalError as JournalError
from .sqlite import Store

if TYPE_CHECKING:
    from ..api import tasks

# The id of a send's row until its answer comes (status UNCERTAIN): not a task id anyone can use.
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
# What later klings added to a journal (Journal.migrate), in order: the service's latest answer
# (0.1.0's batch work), business ids (API.md 1c), file sizes (so that re-runs know the files as
# the task's own). Columns are only ever added.
ADDED_COLUMNS = {"tasks": ("task", "business_id", "file_sizes"), "batch_lines": ("business_id",)}
UPLOAD_FRESH_SECONDS = 6 * 3600  # the service does not say how long upload URLs live: be modest


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
        for table, added in ADDED_COLUMNS.items():
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for column in (name for name in added if name not in columns):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS tasks_business ON tasks (business_id)")

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
        business_id = _business_id(params)
        with self._write(durable=True) as conn:
            if line is not None:
                # A line sent again under the business id of its earlier attempt (the re-run
                # looked that up, and the service had no task under it): this send's row
                # replaces that attempt's `uncertain` one.
                conn.execute(
                    "DELETE FROM tasks WHERE status = ? AND business_id = ? AND business_id IN"
                    " (SELECT business_id FROM batch_lines WHERE key = ? AND task_id IS NULL)",
                    (UNCERTAIN, params.get("client_business_id"), line[0]),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO batch_lines"
                    " (key, task_id, line, source, sent_at, business_id)"
                    " VALUES (?, NULL, ?, ?, ?, ?)",
                    (*line, now, business_id),
                )
            conn.execute(
                "INSERT INTO tasks (id, submitted_at, updated_at, base_url, params, status,"
                " error, task, business_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    mark,
                    now,
                    now,
                    base_url,
                    _json(params),
                    UNCERTAIN,
                    reason or "sent; no answer recorded (kling stopped, or the answer was lost)",
                    _json({"id": mark, "status": UNCERTAIN}),
                    business_id,
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
        rows = self.read(
            f"SELECT * FROM tasks WHERE business_id = ? {NEWEST_FIRST}", (business_id,)
        )
        return _entry(rows[0]) if rows else None

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
                if conn.execute(
                    "UPDATE tasks SET id = ?, status = ?, progress = ?, video_url = ?, error = ?,"
                    " task = ?, updated_at = ? WHERE id = ?",
                    (task.id, *_answer(task), now, mark),
                ).rowcount:
                    return
            conn.execute(
                "INSERT OR IGNORE INTO tasks (id, submitted_at, updated_at, base_url, params,"
                " status, progress, video_url, error, task, business_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (task.id, now, now, base_url, _json(params), *_answer(task), _business_id(params)),
            )

    def update(self, task: tasks.TaskView) -> None:
        """Bring a known task up to date with the service's latest view (unknown ids: ignored)."""
        if not task.id:
            return
        with self._write() as conn:
            conn.execute(
                "UPDATE tasks SET status = ?, progress = COALESCE(?, progress),"
                " video_url = COALESCE(?, video_url), error = ?, task = ?, updated_at = ?"
                " WHERE id = ?",
                (*_answer(task), time.time(), task.id),
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
            files, sizes = _parsed(row[0]), _parsed(row[1] or "{}")
            if str(path) not in files:
                files.append(str(path))
            sizes[str(path)] = size
            conn.execute(
                "UPDATE tasks SET files = ?, file_sizes = ?, updated_at = ? WHERE id = ?",
                (_json(files), _json(sizes), time.time(), task_id),
            )

    def saved_as(self, task_id: str, path: Path) -> bool:
        """Whether `path` is the video this journal saved for the task, as it was saved (the
        same size): a re-run finds it done instead of refusing to overwrite it."""
        rows = self.read("SELECT file_sizes FROM tasks WHERE id = ?", (task_id,))
        size = _parsed(rows[0][0] or "{}").get(str(path.resolve())) if rows else None
        try:
            return size is not None and path.is_file() and path.stat().st_size == size
        except OSError:
            return False

    def entries(self, limit: int | None = None) -> list[Entry]:
        if limit is None or limit >= 2**63:  # -n 1e30: more than SQLite can count is all
            limit = -1
        rows = self.read(f"SELECT * FROM tasks {NEWEST_FIRST} LIMIT ?", (limit,))
        return [_entry(row) for row in rows]

    def count(self) -> int:
        """How many tasks the journal holds (`kling list` says how many it left out)."""
        return int(self.read("SELECT COUNT(*) FROM tasks")[0][0])

    def get(self, task_id: str) -> Entry | None:
        rows = self.read("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return _entry(rows[0]) if rows else None

    # --- batch lines -------------------------------------------------------------------------

    def batch_line(
        self, key: str, legacy: str | None = None
    ) -> tuple[str | None, str | None] | None:
        """None: never sent. (task_id, business_id): sent, with its task's id, or None for it
        if no answer came back; and the business id of that attempt (None from an earlier
        kling). `legacy`: the key an earlier kling gave the line, when `key` is not found."""
        sql = "SELECT key, task_id, business_id FROM batch_lines WHERE key IN (?, ?)"
        rows = {row[0]: (row[1], row[2]) for row in self.read(sql, (key, legacy))}
        return rows.get(key, rows.get(legacy)) if legacy is not None else rows.get(key)

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
        fresh = time.time() - UPLOAD_FRESH_SECONDS
        rows = self.read(
            "SELECT url FROM uploads WHERE sha256 = ? AND uploaded_at > ?", (sha256, fresh)
        )
        return rows[0][0] if rows else None

    def remember_upload(self, sha256: str, url: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO uploads (sha256, url, uploaded_at) VALUES (?, ?, ?)",
                (sha256, url, time.time()),
            )


def _json(value: Any) -> str:
    import json  # here, not above: a TAB reads ids and statuses alone, sooner without it

    return json.dumps(dict(value) if isinstance(value, Mapping) else value, ensure_ascii=False)


def _answer(task: tasks.TaskView) -> tuple[str, int | None, str | None, str | None, str]:
    """What a row keeps of the service's answer about its task, whichever write records it
    (the send's answer, or a later one): status, progress, video URL, a failed task's error,
    and the answer itself."""
    error = task.error_text if task.failed else None
    return (task.status, task.progress, task.video_url, error, _json(task.raw))


def _parsed(text: str) -> Any:
    import json

    return json.loads(text)


def _business_id(params: Mapping[str, Any]) -> str | None:
    value = params.get("client_business_id")
    return value if isinstance(value, str) else None


def _entry(row: tuple[Any, ...]) -> Entry:
    """A row of `tasks` (SELECT *): Entry's fields in order, then file_sizes. One that an earlier
    kling made, read as it is (Journal.existing), may have no business_id."""
    params, files = _parsed(row[4]), _parsed(row[8])
    task = _parsed(row[10]) if row[10] else {"id": row[0], "status": row[5]}
    business_id = row[11] if len(row) > 11 else None
    return Entry._make((*row[:4], params, *row[5:8], files, row[9], task, business_id))
