"""Streamed, verified, atomic downloads of videos, and the file names they get."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from .errors import (
    LocalFileError,
    NoVideoURL,
    RequestFailed,
    ServiceUnavailable,
    UsageError,
    VideoURLExpired,
)
from .paths import special_file, write_atomically
from .text import check_utf8

if TYPE_CHECKING:
    from .api.client import Client
    from .api.http import Stream
    from .api.tasks import TaskView

# Read at most this much at a time: 256 KiB kept the 512 MiB download at 0.70x curl and its
# peak at 36.5 MiB; 1 MiB was faster (0.61x) but 39.7 MiB, at the edge of the 40 MiB goal.
CHUNK = 256 * 1024
WRITEBACK = 32 * 1024 * 1024  # start writing to disk every 32 MiB, not all at the final fsync
MAX_NAME = 120
EXPIRED_STATUSES = frozenset({403, 404, 410})
ATTEMPTS = 4


def safe_filename(task_id: str, suffix: str = ".mp4") -> str:
    """A file name from a task id that cannot leave its folder or upset a file system."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", task_id).strip("._-")
    name = name[:MAX_NAME] or "video"
    return name + suffix


def names_folder(output: str | Path) -> bool:
    """`-o` names a folder when one exists there or the path ends with a slash. Keep `-o` a
    string until here: `Path("videos/")` forgets the slash."""
    return Path(output).is_dir() or str(output).endswith(("/", os.sep))


def target_for(task_id: str, output: str | Path | None, output_dir: Path | None) -> Path:
    """Where a task's video goes: `-o` names a file or a folder; otherwise output_dir or here."""
    if output is None:
        return (output_dir or Path.cwd()) / safe_filename(task_id)
    if names_folder(output):
        return Path(output) / safe_filename(task_id)
    return Path(output)


STDOUT = "-"  # `download -o -`: the video goes to stdout


def check_output(
    output: str | Path,
    task_ids: list[str],
    force: bool,
    saved_as: Callable[[str, Path], bool] = lambda task_id, path: False,
) -> None:
    """Fail early (exit 2, before anything is sent) when the videos could not be saved there.
    A file that `saved_as` says is already that task's video (a re-run) is no obstacle.

    `task_ids` may be empty (not submitted yet): then only the folder or file itself is checked.
    A folder that does not exist yet is made when the first video is saved, as with
    `curl --create-dirs`, provided the nearest one that exists is a folder we may write to.
    """
    if str(output) == STDOUT:  # `download` takes it before here
        raise UsageError(
            "-o - (the video on stdout) is for kling download",
            hint="save to a file or folder, or wait for the task, then: kling download ID -o -",
        )
    if not str(output).strip():  # `-o "$DIR"` with DIR unset: not "here" without a word
        raise UsageError("-o is empty", hint="give a file or a folder (./ for this one)")
    check_utf8(
        str(output),
        f"-o {output}",
        hint="kling records each saved video's path in its journal, as UTF-8 text: "
        "give a UTF-8 name (and rename the file afterwards if need be)",
    )
    path = Path(output)
    if names_folder(output):
        _check_folder(path)
        for task_id in task_ids:
            target = path / safe_filename(task_id)
            _check_file(target, force or saved_as(task_id, target))
        return
    if len(task_ids) > 1:
        raise UsageError(
            f"-o {output} names a file, but there are several tasks",
            hint="give a folder (it must exist, or end the path with /)",
        )
    _check_file(path, force or bool(task_ids and saved_as(task_ids[0], path)))
    _check_folder(path.parent)


def _check_file(path: Path, force: bool) -> None:
    """A video replaces only a regular file, and only with --force: never a folder, nor a
    symlink, a device or a FIFO (`-o /dev/null --force` would have replaced /dev/null: a
    file is renamed into place, over whatever stood there)."""
    try:
        mode = path.lstat().st_mode
    except OSError:  # nothing there (or nothing we can see: the write will say)
        return
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a folder")
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{path} is {special_file(mode)}: kling saves a video only as a regular file, and "
            "never replaces anything else (--force included)",
            hint="name a new file or a folder"
            + ("; for stdout, kling download ID -o -" if stat.S_ISLNK(mode) else ""),
        )
    if not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")


def _check_folder(folder: Path) -> None:
    """The folder, or the nearest one that exists (the rest is made when the video is saved)."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to folder {existing}: permission denied")


Opener = Callable[[str, dict[str, str]], "Stream"]  # a read that breaks raises RequestFailed
OnBytes = Callable[[int, int | None], None]  # (bytes so far, total or None)


def download(
    url: str,
    target: Path,
    open_url: Opener,
    *,
    force: bool = False,
    on_bytes: OnBytes | None = None,
    sync: bool = True,
) -> Path:
    """Stream `url` into a temporary file beside `target`, verify its length, rename it into place.

    A broken transfer resumes with a Range request where the host answers 206, else starts over.
    Nothing ever stands at `target` but a complete file. `sync=False` skips the fsync before
    the rename: only for the benchmark, to time the transfer loop alone.
    """
    _check_file(target, force)
    for stale in _stale_parts(target):
        stale.unlink(missing_ok=True)  # left by a run that was killed (SIGKILL cannot clean up)

    def fetch(fh: BinaryIO) -> None:
        _fetch_into(url, fh, open_url, on_bytes)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # _check_file again before the rename: something may have appeared there meanwhile.
        write_atomically(target, fetch, sync=sync, check=lambda: _check_file(target, force))
    except OSError as exc:
        raise LocalFileError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target.resolve()


# Part files found in a folder when this process first saved there, by the name they were for:
# one scan a folder, not one per download (a batch saves thousands of videos in one folder).
_stale_index: dict[Path, dict[str, list[Path]]] = {}
_stale_lock = threading.Lock()


def _stale_parts(target: Path) -> list[Path]:
    """Temporary files that an earlier, killed run left for this same target."""
    folder = target.parent
    with _stale_lock:
        index = _stale_index.get(folder)
        if index is None:
            index = _stale_index[folder] = {}
            try:
                names = [entry.name for entry in os.scandir(folder)]
            except OSError:
                names = []
            for name in names:  # `.NAME.RANDOM.part`, as mkstemp makes them below
                if name.startswith(".") and name.endswith(".part"):
                    stem = name[1 : -len(".part")].rpartition(".")[0]
                    index.setdefault(stem, []).append(folder / name)
        return index.pop(target.name, [])


def _fetch_into(
    url: str, fh: BinaryIO, open_url: Opener, on_bytes: OnBytes | None, seekable: bool = True
) -> None:
    """`seekable=False`: `fh` is a stream (stdout), whose bytes cannot be taken back: a
    transfer resumes only where the host answers the Range asked for."""
    received = 0
    total: int | None = None
    last_problem = ""
    for _attempt in range(ATTEMPTS):
        headers = {"Range": f"bytes={received}-"} if received else {}
        resp = open_url(url, headers)
        try:
            if resp.status in EXPIRED_STATUSES:
                raise VideoURLExpired(f"the video host answered {resp.status} for {url}")
            if resp.status not in (200, 206):
                raise ServiceUnavailable(f"the video host answered {resp.status} for {url}")
            if resp.status == 200 or _range_start(resp) != received:
                if received and not seekable:
                    raise ServiceUnavailable(
                        f"the download of {url} broke after {received} bytes and the host "
                        "cannot resume it: the video on stdout is incomplete"
                    )
                received = 0  # the host ignored our Range (or answered another): start over
                if seekable and fh.tell():
                    # Not on an empty file: ext4 flushes a file truncated to 0 when closed.
                    fh.seek(0)
                    fh.truncate()
            expected = _expected_total(resp, received)
            total = expected if expected is not None else total
            written_back = received
            try:
                for chunk in resp.iter_content(CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    if seekable and received - written_back >= WRITEBACK:
                        _write_back(fh, max(0, written_back - WRITEBACK), received)
                        written_back = received
                    if on_bytes:
                        on_bytes(received, total)
            except RequestFailed as exc:
                if exc.out_of_time:  # --timeout: no more tries
                    raise RequestFailed(
                        exc.host,
                        f"the download of {url} took longer than --timeout allows",
                        sent=True,
                        out_of_time=True,
                    ) from None
                # A broken transfer (not a local write error): resume or start over.
                last_problem = "the connection broke"
                continue
            if total is None or received == total:
                return
            last_problem = f"received {received} of {total} bytes"
        finally:
            resp.close()
    incomplete = "" if seekable else " (the video on stdout is incomplete)"
    raise ServiceUnavailable(
        f"download of {url} failed: {last_problem}, after {ATTEMPTS} tries{incomplete}"
    )


def _write_back(fh: BinaryIO, start: int, end: int) -> None:
    """Have the kernel start writing [start, end) to disk now, and drop what it already wrote
    from the page cache. The final fsync then has only the tail left: without this it writes
    the whole video at the end (0.2 to 2 s for 512 MiB here, longer than the transfer itself).
    Where posix_fadvise is missing (macOS, Windows) the final fsync does it all, as before."""
    if hasattr(os, "posix_fadvise"):
        fh.flush()
        fd = fh.fileno()
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


def _range_start(resp: Stream) -> int | None:
    """Where a 206 answer's bytes start, from `Content-Range: bytes START-END/TOTAL`."""
    crange = resp.headers.get("Content-Range", "")
    start = crange.removeprefix("bytes ").split("-", 1)[0].strip()
    return int(start) if start.isdigit() else None


def _expected_total(resp: Stream, offset: int) -> int | None:
    """The full size of the file: from Content-Range on a 206, else Content-Length."""
    if resp.status == 206:
        crange = resp.headers.get("Content-Range", "")
        if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
            return int(crange.rsplit("/", 1)[1])
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return int(length) + (offset if resp.status == 206 else 0)
    return None


def fetch_video(
    client: Client,
    task: TaskView,
    target: Path,
    *,
    force: bool,
    on_bytes: OnBytes | None = None,
    deadline: float | None = None,
) -> tuple[Path, TaskView]:
    """Download a completed task's video; an expired URL is fetched afresh from the service
    once. Returns the saved path and the task as last seen. No journal, no display: it runs
    on worker threads."""

    def save(url: str, open_url: Opener) -> Path:
        return download(url, target, open_url, force=force, on_bytes=on_bytes)

    return _with_fresh_url(client, task, save, deadline)


def stream_video(
    client: Client,
    task: TaskView,
    out: BinaryIO,
    *,
    on_bytes: OnBytes | None = None,
    deadline: float | None = None,
) -> TaskView:
    """`download -o -`: a completed task's video written to `out` (stdout) as it comes, with
    the expired-URL retry of fetch_video while nothing has been written. Returns the task as
    last seen."""
    written = 0

    def counting(done: int, total: int | None) -> None:
        nonlocal written
        written = done
        if on_bytes is not None:
            on_bytes(done, total)

    def send(url: str, open_url: Opener) -> None:
        try:
            _fetch_into(url, out, open_url, counting, seekable=False)
        except VideoURLExpired as exc:
            if written:  # a fresh URL would start the video again on stdout
                message = f"{exc.message} (the video on stdout is incomplete)"
                raise ServiceUnavailable(message) from None
            raise
        out.flush()

    return _with_fresh_url(client, task, send, deadline)[1]


T = TypeVar("T")


def _with_fresh_url(
    client: Client,
    task: TaskView,
    fetch: Callable[[str, Opener], T],
    deadline: float | None,
) -> tuple[T, TaskView]:
    """`fetch(url, open_url)` of a completed task's video URL; an expired URL (by its
    expires_at, or by the host's 403/404/410) is asked of the service afresh once."""

    def open_url(url: str, headers: dict[str, str]) -> Stream:
        return client.open_video(url, headers, deadline)

    for fresh in (False, True):
        expiry = task.expires_at
        if fresh or (expiry is not None and expiry < time.time()):
            task = client.get_task(task.id, deadline=deadline)
        url = task.video_url
        if url is None:
            raise no_video_url(task)
        try:
            return fetch(url, open_url), task
        except VideoURLExpired as exc:
            if fresh:
                raise expired(task, exc) from None
    raise AssertionError("unreachable")


def expired(task: TaskView, exc: VideoURLExpired) -> VideoURLExpired:
    """The video is gone even at a fresh URL: say which task, and what to do."""
    return VideoURLExpired(
        f"the video of task {task.id} has expired: {exc.message}",
        hint="the service keeps a video for a limited time after the task completes; "
        "generate it again (`kling list` shows its prompt)",
        task_id=task.id,
    )


def no_video_url(task: TaskView) -> NoVideoURL:
    return NoVideoURL(
        f"task {task.id} is completed but no http(s) video URL was found in it",
        hint=f"the task as the service gave it: {json.dumps(dict(task.raw))[:2000]}",
        task_id=task.id,
    )
