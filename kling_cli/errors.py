"""Exit codes (CLI.md) and the exceptions that carry them.

Domain code raises these; only the app's top level turns them into a message and an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    AUTH = 3
    REJECTED = 4
    UNAVAILABLE = 5
    TASK_FAILED = 6
    TIMEOUT = 7
    LOCAL_FILE = 8
    INTERRUPTED = 130


def first_failure(codes: Iterable[int]) -> int:
    """With several tasks: the code of the first one, in their order, that did not complete."""
    return next((code for code in codes if code != ExitCode.OK), ExitCode.OK)


class KlingError(Exception):
    """An expected failure: a one-line message, maybe a hint, and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        task_id: str | None = None,
        details: list[str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.task_id = task_id
        self.details = details or []  # more lines under the message (each bad batch line)

    def document(self) -> dict[str, object]:
        """The error as --json (and --progress json) report it: `{"type", "message",
        "exit_code"}`, with `hint` and `task_id` where there are."""
        doc: dict[str, object] = {
            "type": self.kind,
            "message": self.message,
            "exit_code": int(self.exit_code),
        }
        if self.details:
            doc["details"] = self.details
        if self.hint:
            doc["hint"] = self.hint
        if self.task_id:
            doc["task_id"] = self.task_id
        return doc


class UsageError(KlingError):
    """Bad input, caught before anything was sent."""

    exit_code = ExitCode.USAGE
    kind = "usage"


class ConfigError(UsageError):
    kind = "config"


class AuthError(KlingError):
    """The key is missing, or the service does not know it."""

    exit_code = ExitCode.AUTH
    kind = "auth"


class MissingKeyError(AuthError):
    pass


class APIError(KlingError):
    """The service answered with an error status. `service_message` is its own words."""

    kind = "api"

    def __init__(
        self,
        status: int,
        service_message: str,
        *,
        code: str | int | None = None,
        retry_after: float | None = None,
        task_id: str | None = None,
    ):
        super().__init__(f"the service answered {status}: {service_message}", task_id=task_id)
        self.status = status
        self.service_message = service_message
        self.code = code
        self.retry_after = retry_after

    @property
    def concerns_one_task(self) -> bool:
        """A task query the service refused for that task alone (bad or unknown id): the
        other tasks of the same command go on."""
        return self.status in (400, 404, 410)

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]  # read-only here: it follows .status
        if self.status in (401, 402, 403):
            return ExitCode.AUTH
        if 400 <= self.status < 500 and self.status != 429:
            return ExitCode.REJECTED
        return ExitCode.UNAVAILABLE


class ServiceUnavailable(KlingError):
    """Could not reach the service, it kept failing, or it answered something unreadable."""

    exit_code = ExitCode.UNAVAILABLE
    kind = "network"


class RequestFailed(ServiceUnavailable):
    """A request that got no complete, readable answer. `sent`: it may have reached the host
    (a generation POST must then not be sent again); `out_of_time`: the caller's deadline
    (--timeout) came first, which is a timeout (exit 7), not an unreachable service."""

    def __init__(
        self,
        host: str,
        description: str,
        *,
        sent: bool,
        out_of_time: bool = False,
        reason: str = "network",
        per_try: float = 0.0,
    ):
        super().__init__(f"could not reach {host}: {description}")
        self.host = host
        self.description = description
        self.sent = sent
        self.out_of_time = out_of_time
        self.reason = reason  # network, tls or redirect (met again by another try), timeout
        self.per_try = per_try  # seconds another try may take to fail the same way

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]  # read-only: follows out_of_time
        return ExitCode.TIMEOUT if self.out_of_time else ExitCode.UNAVAILABLE


class SubmitUncertain(ServiceUnavailable):
    """A generation POST may have reached the service; it is never sent again by itself.
    `business_id`: the send's client_business_id, which finds its task if it made one."""

    kind = "submit_uncertain"
    business_id: str | None = None

    def document(self) -> dict[str, object]:
        doc = super().document()
        if self.business_id:
            doc["business_id"] = self.business_id
        return doc


class TaskFailed(KlingError):
    exit_code = ExitCode.TASK_FAILED
    kind = "task_failed"


class NoVideoURL(TaskFailed):
    kind = "no_video_url"


class VideoURLExpired(KlingError):
    """The video host refused the URL (403/404/410): ask the service for a fresh one."""

    exit_code = ExitCode.TASK_FAILED
    kind = "video_url_expired"


class WaitTimeout(KlingError):
    exit_code = ExitCode.TIMEOUT
    kind = "timeout"


class Stalled(WaitTimeout):
    """--stall-timeout: the task's status and progress stood still that long. It still lives
    at the service, so waiting for it can go on later."""

    kind = "stalled"


class LocalFileError(KlingError):
    """A local file could not be read or written (disk full, permission, a locked journal)."""

    exit_code = ExitCode.LOCAL_FILE
    kind = "file"


class Interrupted(KlingError):
    """Ctrl-C, SIGTERM or SIGHUP: exit 128 + the signal's number (130, 143, 129)."""

    kind = "interrupted"

    def __init__(self, message: str, *, signum: int = 2, hint: str | None = None):
        names = {15: "SIGTERM", 1: "SIGHUP"}
        if signum in names:  # "interrupted (SIGTERM); ..."
            head, sep, rest = message.partition(";")
            message = f"{head} ({names[signum]}){sep}{rest}"
        super().__init__(message, hint=hint)
        self.signum = signum

    @property
    def exit_code(self) -> int:  # type: ignore[override]  # read-only: follows the signal
        return 128 + self.signum
