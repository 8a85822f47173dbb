"""What a service task means: one view of its JSON (state, progress, video URL, error), and
polling tasks until they are final.

The spellings of a task's status (API.md section 2) live in one table here, and nowhere else:
every command, the batch runner, the journal and the displays read a task through `TaskView`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import ExitCode


class State(str, Enum):
    """Where a task stands, whatever the gateway called it."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


# API.md section 2: every final spelling seen across this gateway family and in Kling's own API.
# Anything not here (queued, processing, an unknown word) is still pending: poll on.
SPELLINGS: Mapping[str, State] = {
    "completed": State.COMPLETED,
    "succeed": State.COMPLETED,
    "succeeded": State.COMPLETED,
    "success": State.COMPLETED,
    "failed": State.FAILED,
    "cancelled": State.FAILED,
    "canceled": State.FAILED,
    "expired": State.FAILED,
    "error": State.FAILED,
}
# What API.md's status table advises between polls; unknown statuses get the queued advice.
ADVISED_INTERVAL = {
    "queued": 5.0,
    "submitted": 5.0,
    "pending": 5.0,
    "in_progress": 10.0,
    "processing": 10.0,
    "running": 10.0,
}
FIRST_INTERVAL = 1.0  # poll fast at first, doubling up to the advice
UNKNOWN_STATUS = "unknown"


@dataclass(frozen=True)
class TaskView:
    """One answer of the service about a task, read tolerantly. `raw` is the answer as it came
    (for --json and the journal); everything else is derived from it once."""

    id: str
    status: str  # as it came, trimmed ("unknown" when missing): what kling shows and keeps
    spelling: str  # the status lower-cased: what decisions read (SPELLINGS, ADVISED_INTERVAL)
    state: State
    progress: int | None
    video_url: str | None
    error_text: str
    expires_at: float | None
    business_id: str | None  # the client_business_id it echoes (API.md 1c), if any
    raw: Mapping[str, Any]

    @classmethod
    def of(cls, raw: Any) -> TaskView:
        task: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
        status = _status(task)
        spelling = status.lower()
        task_id = task.get("id")
        return cls(
            id=task_id if isinstance(task_id, str) else "",
            status=status,
            spelling=spelling,
            state=SPELLINGS.get(spelling, State.PENDING),
            progress=_progress(task),
            video_url=_video_url(task),
            error_text=_error_text(task),
            expires_at=_expires_at(task),
            business_id=_business_id(task),
            raw=task,
        )

    @property
    def final(self) -> bool:
        return self.state is not State.PENDING

    @property
    def completed(self) -> bool:
        return self.state is State.COMPLETED

    @property
    def failed(self) -> bool:
        return self.state is State.FAILED

    @property
    def exit_code(self) -> ExitCode:
        """CLI.md's code for a task that ended here: completed 0, failed 6, still pending 7."""
        if self.state is State.COMPLETED:
            return ExitCode.OK
        return ExitCode.TASK_FAILED if self.state is State.FAILED else ExitCode.TIMEOUT

    def failure_message(self) -> str:
        """Why a failed task did not complete, naming the status when it is not plain `failed`."""
        named = "" if self.spelling == State.FAILED.value else f" ({self.status})"
        return f"task {self.id} failed{named}: {self.error_text}"

    def __bool__(self) -> bool:
        """An empty view (nothing heard from the service yet) is false."""
        return bool(self.raw)


def _status(task: Mapping[str, Any]) -> str:
    status = task.get("status")
    if status is None or status == "":
        return UNKNOWN_STATUS
    return status.strip() if isinstance(status, str) else str(status)


def _progress(task: Mapping[str, Any]) -> int | None:
    value = task.get("progress")
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
    """The first http(s) URL of an item or a list of items: each a URL, or an object's `url`."""
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return None
    return _http_url([item.get("url") if isinstance(item, dict) else item for item in items])


def _video_url(task: Mapping[str, Any]) -> str | None:
    """The first http(s) URL in the places API.md lists, in its order."""
    result = task.get("result")
    result = result if isinstance(result, dict) else {}
    return (
        _items_urls(result.get("data"))
        or _http_url(task.get("url"))
        or _http_url(task.get("video_url"))
        or _http_url(result.get("url"))
        or _items_urls(result.get("videos"))
    )


def _error_text(task: Mapping[str, Any]) -> str:
    """A failed task's reason: `error` is an object with a message, or sometimes a plain string."""
    err = task.get("error")
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg")
        code = err.get("code")
        if message and code:
            return f"{message} ({code})"
        return str(message or code or "no reason given")
    if isinstance(err, str) and err.strip():
        return err.strip()
    return "no reason given"


def _business_id(task: Mapping[str, Any]) -> str | None:
    metadata = task.get("metadata")
    for where in (task, metadata if isinstance(metadata, Mapping) else {}):
        value = where.get("client_business_id")
        if isinstance(value, str) and value:
            return value
    return None


def _expires_at(task: Mapping[str, Any]) -> float | None:
    value = task.get("expires_at")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


NOT_SEEN = TaskView.of({})  # a task nothing has been heard about yet
