"""The local task journal: every task this machine submitted, in SQLite.

A task id is written the moment the service returns it, so nothing that fails later can lose
it. Several kling processes may write at once (parallel CI jobs): WAL mode and a busy timeout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import tasks
from ..paths import JOURNAL_FILE as JOURNAL_FILE  # re-exported: their home is kling_cli.paths
from ..paths import UNCERTAIN as UNCERTAIN
from .sqlite import JournalDamaged as JournalDamaged  # re-exported: their home is store.py
from .sqlite import JournalError as JournalError
from .sqlite import Store

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
-- re-run never sends a line twice, even after SIGKILL. `key`: what the line asks, wherever it
-- stands: REQUEST_SHA256:OCCURRENCE (batch/lines.py). A row an earlier kling wrote has the
-- SHA-256 of its file's path, number and text instead: still found for that unchanged line.
-- `line` and `source`: where it was when last sent (its number, the file or stdin:SHA256).
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


class Journal(Store):
    """The journal's records: tasks, batch lines, uploaded images."""

    schema = SCHEMA

    def migrate(self, conn: sqlite3.Connection) -> None:
        _migrate(conn)

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
        with self._write() as conn:
            row = conn.execute("SELECT files FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                return
            files = json.loads(row[0])
            if str(path) not in files:
                files.append(str(path))
            conn.execute(
                "UPDATE tasks SET files = ?, updated_at = ? WHERE id = ?",
                (json.dumps(files), time.time(), task_id),
            )

    def entries(self, limit: int | None = None) -> list[Entry]:
        sql = "SELECT * FROM tasks ORDER BY submitted_at DESC, rowid DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        conn = self.conn
        with self._errors():
            return [_entry(row) for row in conn.execute(sql, args)]

    def get(self, task_id: str) -> Entry | None:
        conn = self.conn
        with self._errors():
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _entry(row) if row else None

    # --- batch lines -------------------------------------------------------------------------

    def batch_line(self, key: str, legacy: str | None = None) -> tuple[str | None] | None:
        """None: never sent. (task_id,): sent, with its id, or (None,) if no answer came back.
        `legacy`: the key an earlier kling gave the line, looked up when `key` is not found."""
        conn = self.conn
        with self._errors():
            rows = dict(
                conn.execute(
                    "SELECT key, task_id FROM batch_lines WHERE key IN (?, ?)", (key, legacy)
                ).fetchall()
            )
        for wanted in (key, legacy):
            if wanted in rows:
                return (rows[wanted],)
        return None

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
