"""How a task is shown, in one place: its status word, its progress and its detail (the saved
files, else why it did not complete, else the video URL), for every display on stderr and for
the lines on stdout; and its --json document, the service's object with kling's own fields.
Every piece of text from the user or the service comes out printable on a line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .api.tasks import State, TaskView
from .errors import ExitCode
from .text import printable

if TYPE_CHECKING:
    from .engine.jobs import Job
    from .errors import KlingError

# The stages whose names say where a job stands, while it is not the task's own status that does.
STAGE_WORDS = ("new", "sending", "downloading")


class Shown(NamedTuple):
    # the service's spelling, or kling's word: new, sending, checking, downloading, stalled, error
    status: str
    progress: str  # "40%" (bytes so far while downloading), "" when there is none
    detail: str  # the saved files, else why it did not complete, else the video URL
    state: State | None  # for a colour: completed, failed, pending; None for an error of kling's


def task(view: TaskView, files: Sequence[Path] = (), error: KlingError | None = None) -> Shown:
    """A task as last heard of, with what this run saved or why it ended."""
    percent = "" if view.progress is None else f"{view.progress}%"
    if error is not None:
        word = "stalled" if error.kind == "stalled" else "error"
        return Shown(word, percent if word == "stalled" else "", printable(error.message), None)
    if files:
        detail = " ".join(str(f) for f in files)
    elif view.failed:
        detail = view.error_text
    else:
        detail = view.video_url or ""
    return Shown(printable(view.status), percent, printable(detail), view.state)


def job(job: Job) -> Shown:
    """A job of the engine: its task, or where the job stands before the task says."""
    shown = task(job.view, job.files, job.error)
    word = job.stage.value
    if word not in STAGE_WORDS or job.error is not None:
        return shown
    if word == "downloading" and not job.view and not job.received:
        return Shown("checking", "", "", State.PENDING)  # asking the service what it is first
    if word == "downloading":
        total = f"/{job.total / 1e6:.1f}" if job.total else ""
        done = f"{job.received / 1e6:.1f}{total} MB" if job.received else ""
        return Shown(word, done, shown.detail, State.PENDING)
    return Shown(word, "", "", State.PENDING)


def tsv(*fields: str) -> str:
    """A tab-separated line of stdout: fields made printable, so none holds a tab or a newline."""
    return "\t".join(printable(field) for field in fields)


def document(
    view: TaskView,
    files: Sequence[Path] = (),
    *,
    error: KlingError | None = None,
    line: int | None = None,
) -> dict[str, Any]:
    """A task's --json document (CLI.md "Output"): the service's object as it came, plus
    `output_files` when this command saved videos; a batch line's `line`, and its error as
    kling's where it has one. Nothing else is added: scripts compare it with the service's.
    (CLI.md's "What --json adds" asks for a `kling` object here too; the two rules conflict,
    and the acceptance check holds to this one. kling's words for a task: `kling list --json`.)"""
    saved = [str(Path(f).resolve()) for f in files]
    doc: dict[str, Any] = dict(view.raw)
    if line is not None:
        doc["line"] = line
    if saved:
        doc["output_files"] = saved
    if error is not None:
        doc["error"] = error.document()
    return doc


# How a task or line that did not complete ended, in words (one, many), by its exit code
# (CLI.md): the batch summary and its live bar say it alike.
OUTCOMES: dict[int, tuple[str, str]] = {
    ExitCode.TASK_FAILED: ("failed", "failed"),
    ExitCode.TIMEOUT: ("not finished", "not finished"),
    ExitCode.REJECTED: ("refused", "refused"),
    ExitCode.AUTH: ("refused", "refused"),
}
WITH_ERRORS = ("with an error", "with errors")
OUTCOME_ORDER = (*dict.fromkeys(OUTCOMES.values()), WITH_ERRORS)


def outcome(code: int) -> tuple[str, str]:
    return OUTCOMES.get(code, WITH_ERRORS)


def outcome_counts(ended: Counter[tuple[str, str]]) -> list[str]:
    """`1 failed`, `2 not finished`: the kinds there are (outcome's), in one order."""
    return [f"{n} {words[n != 1]}" for words in OUTCOME_ORDER if (n := ended[words])]
