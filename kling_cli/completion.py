"""Shell-completion callbacks: task ids from the journal, the choices of generate's options, and
the config keys with the choices of their values.

They run inside `kling` on every TAB (the shell script calls the program back with
_KLING_COMPLETE set), so they are cheap and never raise: an error would print a traceback into
the user's command line. A TAB never creates the journal, nor its folder.
"""

from __future__ import annotations

import re

import typer

from .config import ASPECT_RATIOS, DURATIONS, KEYS, MODES, VIDEO_REFERS

MAX_TASK_IDS = 50  # a screenful: more is noise, and each one is a line the shell must sort
# Only ids a shell can take as one word with no quoting are offered (bash inserts a completion
# as is): a hostile id such as `x;rm -rf ~` from a misbehaving service is never typed for you.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]+")
_PLAIN_STATUS = re.compile(r"[a-z_ -]{1,20}")


def task_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Task ids from the journal that start with `incomplete`, newest first, with their status.

    Ids already on the command line are left out. Any failure (no journal, a locked or corrupt
    one, an unreadable folder) gives no completions.
    """
    try:
        return _task_ids(_given(ctx), incomplete)
    except Exception:
        return []


def _given(ctx: typer.Context) -> set[str]:
    """Values already parsed on the line: `kling wait ID1 <TAB>` does not offer ID1 again."""
    given: set[str] = set()
    for value in ctx.params.values():
        if isinstance(value, list | tuple):
            given.update(v for v in value if isinstance(v, str))
    return given


def _task_ids(given: set[str], incomplete: str) -> list[tuple[str, str]]:
    import sqlite3
    from urllib.parse import quote

    from .config import data_dir
    from .journal import JOURNAL_FILE, UNCERTAIN

    path = data_dir() / JOURNAL_FILE
    if not path.is_file():
        return []
    uri = f"file:{quote(str(path))}"
    try:
        # mode=rw never creates the file; being able to write lets the last connection tidy
        # the WAL files away on close, as every kling command does. A read-only file: mode=ro.
        conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=1.0)
    except sqlite3.Error:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=1.0)
    try:  # the order is Journal.entries'
        rows = conn.execute(
            "SELECT id, status FROM tasks WHERE substr(id, 1, ?) = ? AND status != ?"
            " ORDER BY submitted_at DESC, rowid DESC LIMIT ?",
            (len(incomplete), incomplete, UNCERTAIN, MAX_TASK_IDS + len(given)),
        ).fetchall()
    finally:
        conn.close()
    found: list[tuple[str, str]] = []
    for task_id, status in rows:
        if not isinstance(task_id, str) or task_id in given or task_id in (".", ".."):
            continue
        if not _PLAIN_WORD.fullmatch(task_id):
            continue
        plain = isinstance(status, str) and _PLAIN_STATUS.fullmatch(status)
        found.append((task_id, status if plain else ""))
    return found[:MAX_TASK_IDS]


def _starting_with(choices: tuple[object, ...], incomplete: str) -> list[str]:
    return [str(c) for c in choices if str(c).startswith(incomplete)]


def modes(incomplete: str) -> list[str]:
    """--mode: std pro."""
    return _starting_with(MODES, incomplete)


def durations(incomplete: str) -> list[str]:
    """--duration: 5 10."""
    return _starting_with(DURATIONS, incomplete)


def aspect_ratios(incomplete: str) -> list[str]:
    """--aspect-ratio: 16:9 9:16 1:1."""
    return _starting_with(ASPECT_RATIOS, incomplete)


def video_refers(incomplete: str) -> list[str]:
    """--video-refer: base feature."""
    return _starting_with(VIDEO_REFERS, incomplete)


def config_keys(incomplete: str) -> list[tuple[str, str]]:
    """KEY of `config set/get/unset`: every config key, with what it is for."""
    return [(k.name, k.help) for k in KEYS.values() if k.name.startswith(incomplete)]


def config_values(ctx: typer.Context, incomplete: str) -> list[str]:
    """VALUE of `config set KEY`: the key's choices (mode, duration, aspect_ratio), else none."""
    key = KEYS.get(str(ctx.params.get("name")))
    return _starting_with(key.choices, incomplete) if key else []
