"""The journal as the record kept beside the work: a write that fails is warned of (once) and
the work goes on, since a paid task must never be abandoned because its record failed. What
must not go on without the journal (a batch deciding what it already sent) uses the Journal
itself, whose errors stop the run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .sqlite import JournalError

if TYPE_CHECKING:
    from ..api.tasks import TaskView
    from ..context import Ui
    from .journal import Journal

T = TypeVar("T")


class Records:
    def __init__(self, journal: Callable[[], Journal], base_url: Callable[[], str], ui: Ui):
        self._journal = journal  # opened on first use
        self._base_url = base_url  # where the tasks are sent: asked when one is recorded
        self._ui = ui
        self._warned = False

    def attempt(self, action: Callable[[Journal], T]) -> T | None:
        """`action` on the journal; None (and a warning, once) if the journal fails."""
        try:
            return action(self._journal())
        except JournalError as exc:
            self.failed(exc)
            return None

    def sending(self, body: Mapping[str, Any], line: tuple[str, int, str] | None = None) -> str:
        """The mark of a send about to leave (Journal.sending), and of the batch line that
        sends it; a JournalError if it cannot be written: the caller decides whether to send
        without it."""
        return self._journal().sending(self._base_url(), body, line=line)

    def submitted(
        self, task: TaskView, body: Mapping[str, Any], batch_key: str | None, mark: str | None
    ) -> bool:
        """A new task in place of its send's mark (and the batch line that made it); False
        when it could not be kept."""

        def record(journal: Journal) -> bool:
            journal.record_submitted(task, self._base_url(), body, batch_key, mark)
            return True

        return self.attempt(record) is True

    def uncertain(self, mark: str | None, body: Mapping[str, Any], reason: str) -> None:
        """A generation request that may have made a task: listed as `uncertain`, its mark
        kept with why (or, if the mark could not be written, a row for it now)."""
        if mark is not None:
            self.attempt(lambda j: j.uncertain(mark, reason))
        else:
            self.attempt(lambda j: j.sending(self._base_url(), body, reason))

    def found(self, business_id: str, task: TaskView) -> None:
        """An uncertain send found by its business id: its row is the task's now."""
        self.attempt(lambda j: j.resolve(business_id, task, self._base_url()))

    def not_sent(self, mark: str | None) -> None:
        """The request of `mark` surely made no task: its row goes."""
        if mark is not None:
            self.attempt(lambda j: j.not_sent(mark))

    def update(self, task: TaskView) -> None:
        self.attempt(lambda j: j.update(task))

    def file(self, task_id: str, path: Path) -> None:
        self.attempt(lambda j: j.add_file(task_id, path))

    def failed(self, exc: JournalError) -> None:
        """A journal failure, here or met elsewhere: warned of once."""
        if not self._warned:
            self._warned = True
            self._ui.warn(exc.message)
            if exc.hint:
                self._ui.note(f"hint: {exc.hint}")
