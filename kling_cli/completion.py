"""Shell-completion callbacks: task ids from the journal, the choices of generate's options, and
the config keys with the choices of their values.

They run inside `kling` on every TAB (the shell script calls the program back with
_KLING_COMPLETE set), so they are cheap and never raise: an error would print a traceback into
the user's command line. A TAB never creates the journal, nor its folder.

The task ids come from the journal's own query (store/ids.py) through
kling_cli.main.journal_task_ids, as for `kling __complete-ids`, which the scripts in
completions/ run for a TAB on the task ids of wait, status and download without typer.
"""

from __future__ import annotations

import typer

from .config import ASPECT_RATIOS, DURATIONS, KEYS, MODES, VIDEO_REFERS
from .main import MAX_TASK_IDS, journal_task_ids

__all__ = ["MAX_TASK_IDS", "task_ids"]


def task_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Task ids from the journal that start with `incomplete`, newest first, with their status.

    Ids already on the command line are left out. Any failure (no journal, a locked or corrupt
    one, an unreadable folder) gives no completions.
    """
    given: set[str] = set()  # values already parsed: `kling wait ID1 <TAB>` skips ID1
    for value in ctx.params.values():
        if isinstance(value, list | tuple):
            given.update(v for v in value if isinstance(v, str))
    return journal_task_ids(incomplete, given)


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


SHARD_COUNTS = range(2, 9)  # N offered for --shard; any N is accepted


def shards(incomplete: str) -> list[tuple[str, str]]:
    """--shard K/N: 1/2 2/2 1/3 ... 8/8 (each with what it takes)."""
    choices = [(f"{k}/{n}", f"shard {k} of {n}") for n in SHARD_COUNTS for k in range(1, n + 1)]
    return [(value, help) for value, help in choices if value.startswith(incomplete)]
