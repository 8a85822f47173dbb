"""Where kling keeps its files, and the journal's file name: stdlib only and nothing else, so
that a TAB (`kling __complete-ids`, kling_cli.main) can find the journal without loading the
config. kling_cli.store.journal re-exports JOURNAL_FILE. And how kling writes a file: whole
(write_atomically, whose unfinished files an interrupted run removes), with the mode it gets
where the system has modes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: a TAB comes here
if TYPE_CHECKING:
    from typing import BinaryIO

JOURNAL_FILE = "journal.sqlite3"


def home_override(environ: Mapping[str, str] | None = None) -> Path | None:
    home = (os.environ if environ is None else environ).get("KLING_HOME")
    return Path(home).expanduser() if home else None


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    override = home_override(environ)
    if override:
        return override
    from platformdirs import user_config_path

    return user_config_path("kling", appauthor=False)


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """KLING_HOME, else the per-user data folder. `environ`: the run's environment."""
    override = home_override(environ)
    if override:
        return override
    from platformdirs import user_data_path

    return user_data_path("kling", appauthor=False)


def ordinary_file_mode() -> int:
    """The mode of a file kling saves for the user (a video, its sidecar, a page): what the
    umask gives any new file, as `cp` would. Only files holding the key are kept 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomically(
    target: Path,
    content: bytes | Callable[[BinaryIO], object],
    *,
    mode: int | None = None,
    sync: bool = False,
    check: Callable[[], object] | None = None,
) -> None:
    """`content` (bytes, or a function that writes them) into `target` through a temporary
    file beside it (`.NAME.RANDOM.part`), renamed into place: `target` is the old file or the
    new one, never part of one. `mode`: the new file's (default: ordinary_file_mode; mkstemp
    makes 0600); `sync`: on disk before the rename, so that a power cut leaves one or the
    other too; `check`: called just before the rename (what stands at `target` may have
    changed meanwhile). OSError as the system gave it."""
    import tempfile  # here: a TAB imports this module, and never writes

    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(name)
    _unfinished.add(tmp)
    try:
        # Windows has os.fchmod only from Python 3.13, and there a mode is little more than
        # read-only: without it the file keeps what it was made with (mkstemp's: the user's own).
        fchmod = getattr(os, "fchmod", None)
        if fchmod is not None:
            fchmod(fd, ordinary_file_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            if isinstance(content, bytes):
                fh.write(content)
            else:
                content(fh)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        if check is not None:
            check()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # gone already once renamed
        _unfinished.discard(tmp)


# The temporary files of writes under way, so that an interrupted run can remove those that
# worker threads were still writing: they die with the process, and no `finally` of theirs
# runs. (A set's add, discard and copy are each atomic: no lock.)
_unfinished: set[Path] = set()


def remove_unfinished() -> None:
    for tmp in _unfinished.copy():
        tmp.unlink(missing_ok=True)
    _unfinished.clear()


# Whether a file's mode bits say who may read it: not on Windows, where ACLs do, and every
# file reports 0o666.
POSIX_MODES = os.name == "posix"


def special_file(mode: int) -> str:
    """What a file of this (lstat) mode is, said of a file kling will not replace: kling
    writes a file by renaming a new one over it, which would replace a symlink, a device or
    a FIFO rather than write through it."""
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
