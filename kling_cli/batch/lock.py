"""One run of a batch file's lines at a time: two would both send every line not yet
recorded, and pay twice."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import config
from ..env import Env
from ..errors import LocalFileError, UsageError
from .lines import WHOLE, Shard


@contextmanager
def one_run_at_a_time(env: Env, source: str, shard: Shard = WHOLE) -> Iterator[None]:
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
