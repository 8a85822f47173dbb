"""A check's verdict: ok, warning or problem, what was seen, what to do, and the exit code a
problem stands for."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from ..errors import ExitCode


class Status(str, Enum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""
    # The CLI.md exit code a problem stands for (3 the key, 5 the service, 2 a local file).
    exit_code: ExitCode = ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["status"] = self.status.value
        del doc["exit_code"]
        return doc


def ok(name: str, detail: str, hint: str = "") -> Check:
    return Check(name, Status.OK, detail, hint)


def warning(name: str, detail: str, hint: str = "") -> Check:
    return Check(name, Status.WARNING, detail, hint)


def problem(name: str, detail: str, hint: str, code: ExitCode) -> Check:
    return Check(name, Status.PROBLEM, detail, hint, code)


def exit_code(checks: list[Check]) -> ExitCode:
    """0 when nothing is a problem (warnings are fine), else the code of the first problem in
    the order shown, as with several tasks (CLI.md)."""
    return next((c.exit_code for c in checks if c.status is Status.PROBLEM), ExitCode.OK)
