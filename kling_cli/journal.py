"""The local task journal: every task this machine submitted, in SQLite.

A task id is written the moment the service returns it, so nothing that fails later can lose
it. Several kling processes may write at once (parallel CI jobs): WAL mode and a busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import tasks
from .errors import LocalFileError

JOURNAL_FILE = "journal.sqlite3"
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
    error       TEXT
);
CREATE INDEX IF NOT EXISTS tasks_submitted ON tasks (submitted_at DESC);
"""


class JournalError(LocalFileError):
    kind = "journal"


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

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
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

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            with self._errors():
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA busy_timeout = 30000")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(SCHEMA)
                self._conn = conn
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"the task journal {self.path} failed: {exc}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue, not fail.
        conn = self.conn
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def record_submitted(
        self, task: Mapping[str, Any], base_url: str, params: Mapping[str, Any]
    ) -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO tasks (id, submitted_at, updated_at, base_url, params,"
                " status, progress) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    task["id"],
                    now,
                    now,
                    base_url,
                    json.dumps(dict(params), ensure_ascii=False),
                    tasks.status_of(task),
                    tasks.progress_of(task),
                ),
            )

    def update(self, task: Mapping[str, Any]) -> None:
        """Bring a known task up to date with the service's latest view (unknown ids: ignored)."""
        task_id = task.get("id")
        if not isinstance(task_id, str):
            return
        error = tasks.error_text(task) if tasks.status_of(task) == "failed" else None
        with self._write() as conn:
            conn.execute(
                "UPDATE tasks SET status = ?, progress = COALESCE(?, progress),"
                " video_url = COALESCE(?, video_url), error = ?, updated_at = ? WHERE id = ?",
                (
                    tasks.status_of(task),
                    tasks.progress_of(task),
                    tasks.video_url(task),
                    error,
                    time.time(),
                    task_id,
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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _entry(row: tuple[Any, ...]) -> Entry:
    (tid, submitted, updated, base_url, params, status, progress, url, files, error) = row
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
    )
