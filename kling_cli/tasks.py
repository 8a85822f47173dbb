"""Reading the service's task JSON tolerantly, and polling tasks until they are final."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import APIError, KlingError

FINAL_STATUSES = frozenset({"completed", "failed"})
# What API.md's status table advises between polls; unknown statuses get the queued advice.
ADVISED_INTERVAL = {"queued": 5.0, "submitted": 5.0, "in_progress": 10.0}
FIRST_INTERVAL = 1.0  # poll fast at first, doubling up to the advice


def status_of(task: Any) -> str:
    status = task.get("status") if isinstance(task, dict) else None
    if status is None or status == "":
        return "unknown"
    return str(status).strip().lower() if isinstance(status, str) else str(status)


def is_final(task: Any) -> bool:
    return status_of(task) in FINAL_STATUSES


def progress_of(task: Any) -> int | None:
    value = task.get("progress") if isinstance(task, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if isinstance(value, (int, float)) and value == value:  # NaN is not a progress
        return int(max(0, min(100, value)))  # clamp first: int(inf) raises
    return None


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    if isinstance(value, list):
        for item in value:
            url = _http_url(item)
            if url:
                return url
    return None


def _items_urls(items: Any) -> str | None:
    if isinstance(items, dict):
        items = [items]
    if isinstance(items, list):
        for item in items:
            url = _http_url(item.get("url")) if isinstance(item, dict) else _http_url(item)
            if url:
                return url
    return None


def video_url(task: Any) -> str | None:
    """The first http(s) URL in the places API.md lists, in its order."""
    if not isinstance(task, dict):
        return None
    result = task.get("result")
    result = result if isinstance(result, dict) else {}
    return (
        _items_urls(result.get("data"))
        or _http_url(task.get("url"))
        or _http_url(task.get("video_url"))
        or _http_url(result.get("url"))
        or _items_urls(result.get("videos"))
    )


def error_text(task: Any) -> str:
    """A failed task's reason: `error` is an object with a message, or sometimes a plain string."""
    err = task.get("error") if isinstance(task, dict) else None
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg")
        code = err.get("code")
        if message and code:
            return f"{message} ({code})"
        return str(message or code or "no reason given")
    if isinstance(err, str) and err.strip():
        return err.strip()
    return "no reason given"


def expires_at(task: Any) -> float | None:
    value = task.get("expires_at") if isinstance(task, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


# --- waiting ---------------------------------------------------------------------------------


@dataclass
class Tracked:
    """One task being waited for: its latest view, or the error that ended its polling."""

    task_id: str
    task: dict[str, Any] = field(default_factory=dict)
    error: KlingError | None = None
    next_poll: float = 0.0
    interval: float = FIRST_INTERVAL  # the next gap between polls, when not fixed

    @property
    def done(self) -> bool:
        return self.error is not None or is_final(self.task)


Poll = Callable[[str], dict[str, Any]]
OnUpdate = Callable[[Tracked], None]


def wait_for(
    task_ids: Iterable[str],
    poll: Poll,
    *,
    interval: float | None = None,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    known: dict[str, dict[str, Any]] | None = None,
) -> list[Tracked]:
    """Poll every task until each is final, has an error, or the timeout passes.

    Each task keeps its own schedule: every `interval` seconds when given, else fast at first
    and then no faster than the service's advice for its status. Errors that concern one task
    (an unknown id) end that task's polling; errors of reach propagate.
    """
    start = clock()
    deadline = None if timeout is None else start + timeout
    tracked = {tid: Tracked(tid, task=dict((known or {}).get(tid) or {})) for tid in task_ids}
    # A heap of (next poll, order, task): each wake-up costs log(n), not a scan of all tasks.
    schedule: list[tuple[float, int, Tracked]] = []
    for order, t in enumerate(tracked.values()):
        if t.task:  # just heard from (the submit answer): no need to ask again at once
            t.next_poll = start + next_gap(t, interval)
            if on_update:
                on_update(t)
        if not t.done:
            heapq.heappush(schedule, (t.next_poll, order, t))
    while schedule:
        now = clock()
        if deadline is not None and now >= deadline:
            break
        when, order, t = schedule[0]
        if when > now:
            sleep((when if deadline is None else min(when, deadline)) - now)
            continue
        heapq.heappop(schedule)
        try:
            t.task = poll(t.task_id)
        except APIError as exc:
            if not exc.concerns_one_task:
                raise
            t.error = exc
        t.next_poll = clock() + next_gap(t, interval)
        if on_update:
            on_update(t)
        if not t.done:
            heapq.heappush(schedule, (t.next_poll, order, t))
    return list(tracked.values())


def next_gap(t: Tracked, fixed: float | None) -> float:
    """1 s, 2 s, 4 s, ... until the service's advice for the task's status, which then holds."""
    if fixed is not None:
        return fixed
    advice = ADVISED_INTERVAL.get(status_of(t.task), ADVISED_INTERVAL["queued"])
    gap = min(t.interval, advice)
    t.interval = gap * 2
    return gap
