"""One run of a batch file's lines at a time: two would both send every line not yet
recorded, and pay twice.

What a run is of, its names (Source.lock_names): a file by its device and inode (a hard link
is the same file), its path (a file an editor saved anew is still the one running) and its
content (a copy); stdin by its content. For each name a run holds a lock file of its own
(`batch-HASH.lock`; a shard's `batch-HASH-K-N.lock`), locked by the operating system through
filelock (flock, LockFileEx), so a run that dies, however, leaves no lock held, on every
platform. Shards of one file with the same N take no line in common and run side by side;
any other pair (the same shard, different Ns, or the whole file) is refused, naming the pid
of the run that holds it (written beside its lock, `.pid`). A guard lock for each name makes
looking at the others and taking one's own a single step.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .. import paths
from ..env import Env
from ..errors import LocalFileError, UsageError
from .lines import WHOLE, Shard


@contextmanager
def one_run_at_a_time(env: Env, names: Sequence[str], shard: Shard = WHOLE) -> Iterator[None]:
    """Held while the run goes; UsageError if another run holds any of `names` for a line
    of `shard`."""
    folder = paths.data_dir(env.environ) / "locks"
    stems = sorted({_stem(name) for name in names})
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise LocalFileError(f"cannot make the batch lock in {folder}: {exc.strerror}") from None
    with ExitStack() as held:
        try:
            with ExitStack() as looking:
                for stem in stems:  # guards in one order for every run: none waits on another
                    looking.enter_context(FileLock(folder / f"{stem}.guard"))
                for stem in stems:
                    own = _lock_file(folder, stem, shard)
                    for path in folder.glob(f"{stem}*.lock"):
                        other = _shard_of(path.name, stem)
                        if other is not None and other.overlaps(shard) and path != own:
                            with _take(path, other):  # refused if another run holds it
                                pass  # free: only looked at, and let go
                for stem in stems:
                    own = _lock_file(folder, stem, shard)
                    held.enter_context(_take(own, shard))
                    own.with_suffix(".pid").write_text(str(os.getpid()))
        except OSError as exc:
            raise LocalFileError(f"cannot take the batch lock in {folder}: {exc}") from None
        yield  # the guards are released: the next run may look


def _stem(name: str) -> str:
    return "batch-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _lock_file(folder: Path, stem: str, shard: Shard) -> Path:
    return folder / (f"{stem}.lock" if shard.whole else f"{stem}-{shard.k}-{shard.n}.lock")


def _shard_of(file_name: str, stem: str) -> Shard | None:
    """The shard a lock file is for (`STEM.lock`: the whole file)."""
    rest = file_name.removeprefix(stem).removesuffix(".lock")
    if not rest:
        return Shard()
    match = re.fullmatch(r"-(\d+)-(\d+)", rest)
    return Shard(int(match[1]), int(match[2])) if match else None


@contextmanager
def _take(path: Path, shard: Shard) -> Iterator[None]:
    """The lock on `path`, held until the context ends; or refused: another run holds it."""
    lock = FileLock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise _refusal(path, shard) from None
    try:
        yield
    finally:
        lock.release()


def _refusal(path: Path, shard: Shard) -> UsageError:
    try:
        holder = path.with_suffix(".pid").read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        holder = ""
    what = "this batch file" if shard.whole else f"shard {shard} of this batch file"
    return UsageError(
        f"another kling (pid {holder or '?'}) is running {what}; nothing was sent",
        hint="wait for it to finish, then run this again: it picks up where that one "
        "stopped and sends nothing twice",
    )
