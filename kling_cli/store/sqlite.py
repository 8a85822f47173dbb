"""A SQLite file several kling processes share (parallel CI jobs): WAL mode and a busy
timeout; write transactions, synced to disk when they must survive a power cut; and its
failures as one-line errors that say what to do (JournalError, JournalDamaged)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ExitCode, LocalFileError

# typing.TYPE_CHECKING without importing typing at run time: a TAB (store/ids.py) comes
# through here, and typing is a tenth of its time. mypy reads the block; Python skips it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    S = TypeVar("S", bound="Store")  # a Store's own class (Journal)


class JournalError(LocalFileError):
    kind = "journal"


class JournalDamaged(JournalError):
    """The file is not a database, or a damaged one: only the user can move it aside. Like a
    config file that does not parse, a local file to fix (exit 2), not a bug."""

    exit_code = ExitCode.USAGE


# SQLITE_CORRUPT and SQLITE_NOTADB; their messages for Pythons without `sqlite_errorcode`
DAMAGED_CODES = (11, 26)
DAMAGED_MESSAGES = ("file is not a database", "database disk image is malformed")


class Store:
    """The file, opened on first use with `schema` (and `migrate` for older files)."""

    schema = ""

    def migrate(self, conn: sqlite3.Connection) -> None:
        """Bring a file made by an earlier kling up to `schema`."""

    def __init__(self, path: Path):
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def existing(cls: type[S], path: Path, timeout: float) -> S:
        """The file at `path` as it is, to read: nothing is made (no file, no folder, no
        schema run). JournalError when there is none, and on reading a damaged or locked one
        (`timeout`: seconds to wait for a lock)."""
        store = cls(path)
        uri = path.absolute().as_uri()
        with store._errors():
            try:
                # mode=rw never creates the file; being able to write lets the last connection
                # tidy the WAL files away on close, as every kling command does.
                conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=timeout)
            except sqlite3.OperationalError:  # a read-only file
                conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout)
        conn.isolation_level = None
        store._conn = conn
        return store

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
                    conn.executescript(self.schema)
                    self.migrate(conn)
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

    def read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """The rows a query finds."""
        with self._errors():
            return self.conn.execute(sql, args).fetchall()

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction. `durable`: synced to disk before it returns (a new task id)."""
        conn = self.conn
        with self._errors():
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        """Close it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
