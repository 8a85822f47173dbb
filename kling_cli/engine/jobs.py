"""A job: one task the engine follows to the end (its stage, its task as last seen, its files
or error), the requests a job makes, and a command's plan for running its jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..api.tasks import FIRST_INTERVAL, NOT_SEEN, TaskView
from ..errors import ExitCode, KlingError

# Poll threads, each making one poll at a time: a round of polls of 1,000 tasks 50 ms away
# takes about 1.6 s, well inside the shortest gap the service advises between polls (5 s);
# more at once is what earns a 429 from a gateway.
POLL_THREADS = 32


class Stage(str, Enum):
    """Where a job stands."""

    NEW = "new"  # to send
    SENDING = "sending"
    WAITING = "waiting"  # its next poll is scheduled
    POLLING = "polling"
    FETCH = "fetch"  # to download
    DOWNLOADING = "downloading"
    DONE = "done"


class Kind(str, Enum):
    """The three requests a job makes."""

    SEND = "send"
    POLL = "poll"
    FETCH = "fetch"


@dataclass(eq=False)
class Job:
    """One task followed to the end. `order`: its place in the output (argument order, or
    the batch line's number)."""

    order: int
    task_id: str | None = None
    body: dict[str, Any] | None = None  # what to send, for a job that starts at send
    key: str | None = None  # the batch line's journal key
    mark: str | None = None  # its send's row in the journal, until the answer replaces it
    business_id: str | None = None  # a task known by its business id until it is found
    view: TaskView = NOT_SEEN
    stage: Stage = Stage.NEW
    files: list[Path] = field(default_factory=list)
    error: KlingError | None = None
    interval: float = FIRST_INTERVAL  # the next gap between polls, when not fixed
    received: int = 0  # bytes of the video so far, while downloading
    total: int | None = None
    since: float | None = None  # when this run last saw its status or progress change

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE

    @property
    def code(self) -> ExitCode:
        """CLI.md's exit code for how it ended."""
        return self.error.exit_code if self.error is not None else self.view.exit_code

    @property
    def sent_as(self) -> str | None:
        """The business id its task was sent with, or is known by (CLI.md "Business ids")."""
        given = (self.body or {}).get("client_business_id")
        return self.business_id or (given if isinstance(given, str) else None)

    @property
    def name(self) -> str:
        return self.task_id or self.business_id or f"#{self.order}"

    def why_not_completed(self) -> str:
        if self.error is not None:
            return self.error.message
        if self.view.failed:
            return self.view.failure_message()
        return f"task {self.task_id} is not final yet (still {self.view.status})"


J = TypeVar("J", bound=Job)


@dataclass
class Plan(Generic[J]):
    """How the engine runs a command's jobs."""

    parallel: int = 4  # sends and downloads (and batch's uploads) in flight at once
    follow: bool = True  # False: a sent job is done once its task id is recorded
    interval: float | None = None  # fixed seconds between polls; None: as the service advises
    timeout: float | None = None  # for the whole run
    stall_timeout: float | None = None  # for each task: its status and progress unchanged
    force: bool = False
    target: Callable[[J], Path] | None = None  # where a completed task's video goes; None: kept
    # a file the journal saved as this task's video, as it was (a re-run finds it done)
    saved_as: Callable[[str, Path], bool] = lambda task_id, path: False
    # batch: its lines' bodies made ready just before they are sent (their images' URLs)
    before_send: Callable[[list[J]], None] | None = None
    # batch: the file whose lines are sent (each send's mark marks its line sent too); a
    # batch sends nothing that the journal cannot mark (a re-run could send it again)
    source: str | None = None
    after_send: Callable[[J], None] | None = None  # generate: "submitted ID"
    not_sent: Callable[[J], None] | None = None  # batch: the request surely made no task
    after_save: Callable[[J, Path], object] | None = None  # batch: the sidecar
    # batch: enters more jobs as the engine wants more to send (its lines, read as it goes);
    # False once there are no more. Called on this thread, between requests.
    feed: Callable[[], bool] | None = None
