"""The gallery's own files in its folder: the page, replaced atomically, and the records that
`batch --gallery` leaves of the lines that made no video, so a later `kling gallery FOLDER`
still shows them.

A record is `FOLDER/.kling-failed/LLLL-KEY.json` (LLLL: the line's number; KEY: the first 12
hex digits of the line's journal key, which differs between batch files and edited lines):
the sidecar's fields (line, task_id, prompt, parameters, created_at, completed_at) and the
line's status and error. It is written when the line ends without a video and removed when a
later run of the line saves one. One small file a line: shards and runs that share the
folder never write the same file.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LocalFileError, UsageError
from ..paths import special_file, write_atomically
from .render import GENERATOR

if TYPE_CHECKING:
    from ..batch.lines import Line

PAGE = "index.html"
RECORDS = ".kling-failed"


def write_page(folder: Path, page: str, force: bool = False) -> Path:
    """Replace `folder/index.html` with `page` atomically (a temporary file beside it, then a
    rename): a reader sees the old page or the new one, never half of one. A page kling did
    not write is left alone unless `force`.

    Raises UsageError for that page; LocalFileError when the folder cannot be written."""
    target = folder / PAGE
    try:
        mode = target.lstat().st_mode
    except OSError:
        mode = stat.S_IFREG  # nothing there, or nothing we can see: the write will say
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a folder: the write says so
        raise UsageError(
            f"{target} is {special_file(mode)}: kling writes the page only as a regular file, "
            "and never replaces anything else (--force included)",
            hint="move it aside",
        )
    if not force and not written_by_kling(target):
        raise UsageError(
            f"{target} exists and was not written by kling: not replaced",
            hint="move it aside, or pass --force to replace it",
        )
    try:
        write_atomically(target, page.encode())
    except OSError as exc:  # exit 8 (CLI.md): a local file could not be written
        raise LocalFileError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def written_by_kling(page: Path) -> bool:
    """Whether `page` is absent or a gallery kling wrote (its generator tag, near the top)."""
    try:
        with page.open("rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # not readable (a folder, say): the write says what is wrong
    return f'<meta name="generator" content="{GENERATOR}">'.encode() in head


# --- the records of lines that made no video ---------------------------------------------------


def record_name(line: int, key: str) -> str:
    return f"{line:04d}-{key[:12]}.json"


def write_record(folder: Path, name: str, document: dict[str, Any]) -> None:
    records = folder / RECORDS
    records.mkdir(exist_ok=True)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_atomically(records / name, text.encode())


def remove_record(folder: Path, name: str) -> None:
    (folder / RECORDS / name).unlink(missing_ok=True)


def read_records(folder: Path) -> list[dict[str, Any]]:
    """Every readable record of the folder, in name order (line order); a damaged one is
    skipped."""
    try:
        names = sorted(p.name for p in (folder / RECORDS).iterdir() if p.suffix == ".json")
    except OSError:  # none yet, or not readable
        return []
    found = []
    for name in names:
        try:
            document = json.loads((folder / RECORDS / name).read_bytes())
        except (OSError, ValueError, RecursionError):
            continue
        if isinstance(document, dict):
            found.append(document)
    return found


class LineRecords:
    """batch --gallery, as each line ends: a record of a line that made no video, removed
    once a run of the line saves one. A record that cannot be written is warned of (once)
    and the batch goes on: the page is a view, the journal is the record."""

    def __init__(self, folder: Path, warn: Callable[[str], None]):
        self.folder = folder
        self.warn = warn
        self.warned = False

    def __call__(self, line: Line) -> None:
        name = record_name(line.number, line.key)
        try:
            if line.code == 0:
                remove_record(self.folder, name)
            else:
                write_record(self.folder, name, line_record(line))
        except OSError as exc:
            if not self.warned:
                self.warned = True
                where = self.folder / RECORDS / name
                self.warn(
                    f"the gallery's record of line {line.number} not written: {where}: "
                    f"{exc.strerror or exc}"
                )


def line_record(line: Line) -> dict[str, Any]:
    """What a line that made no video leaves for the gallery: the sidecar's fields, and why."""
    view = line.view
    if line.error is not None:
        error = line.error.message
    elif view.failed:
        error = view.error_text
    else:
        error = line.why_not_completed()
    return {
        "line": line.number,
        "task_id": line.task_id,
        "prompt": line.request.prompt,
        "parameters": line.body,
        "status": view.status if view else "error",
        "error": error,
        "exit_code": int(line.code),
        "created_at": view.raw.get("created_at"),
        "completed_at": view.raw.get("completed_at"),
        "recorded_at": int(time.time()),
    }
