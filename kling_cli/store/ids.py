"""The task ids a TAB offers (`kling __complete-ids`, main.journal_task_ids): the journal's
query for them, and what makes an id plain enough for a shell to type. Apart from journal.py so
that a TAB, which the shell waits for keystroke by keystroke, imports only this, the SQLite
layer and the stdlib it needs (not `typing`: about 4 ms of a TAB's 35)."""

from __future__ import annotations

import re
from collections.abc import Collection

from .sqlite import Store

UNCERTAIN = "uncertain"  # the status of a send whose answer never came (journal.py)
NEWEST_FIRST = "ORDER BY submitted_at DESC, rowid DESC"  # `kling list` order, TAB's too
# Task ids a shell may type for the user: one word with no quoting, as bash inserts a
# completion as is. A hostile id such as `x;rm -rf ~` from a misbehaving service never is.
# The GLOB is the same set, for the query.
PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]+")
NOT_PLAIN_GLOB = "*[^A-Za-z0-9_.-]*"
PLAIN_STATUS_MAX = 32  # a longer status is not shown beside its id


def task_ids(
    journal: Store, prefix: str, given: Collection[str] = (), limit: int = 50
) -> list[tuple[str, str]]:
    """The ids a TAB offers: tasks whose id starts with `prefix`, newest first (the order of
    `kling list`), at most `limit`, leaving out those in `given` (already on the line), each
    with its status ("" unless a plain word). Only plain words (PLAIN_WORD) are offered, and
    no `uncertain` row: a send whose answer never came has no task id."""
    if prefix and not PLAIN_WORD.fullmatch(prefix):
        return []  # no plain id starts with it
    left_out = {".", "..", *given}
    rows = journal.read(
        "SELECT id, status FROM tasks WHERE substr(id, 1, ?) = ? AND id != ''"
        f" AND id NOT GLOB ? AND status != ? {NEWEST_FIRST} LIMIT ?",
        (len(prefix), prefix, NOT_PLAIN_GLOB, UNCERTAIN, limit + len(left_out)),
    )

    def plain(text: object) -> bool:  # (the GLOB stops at a NUL, the pattern does not)
        return isinstance(text, str) and PLAIN_WORD.fullmatch(text) is not None

    found = [
        (task_id, status if plain(status) and len(status) <= PLAIN_STATUS_MAX else "")
        for task_id, status in rows
        if plain(task_id) and task_id not in left_out
    ]
    return found[:limit]
