"""A paid request's record around it: each send is marked in the journal, synced, before its
request leaves (an `uncertain` send until its answer comes, found by its business id after a
SIGKILL), the answer takes the mark's place, and a request that surely made no task withdraws
it. And the account's limit: a send refused for it waits, every send with it, ever longer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic

from ..api.checks import has_business_id, new_business_id
from ..errors import APIError, KlingError, ServiceUnavailable, SubmitUncertain
from .jobs import J, Plan

if TYPE_CHECKING:
    from ..api.tasks import TaskView
    from ..context import Ui
    from ..store.records import Records

LIMIT_CODES = {"1303", 1303}  # Kling: "parallel task over resource pack limit"
BACKPRESSURE_WAIT = (2.0, 30.0)  # first and longest pause when the account is at its limit


class Sends(Generic[J]):
    """The sends of one run: their records, and whether (and when) another may go."""

    def __init__(self, plan: Plan[J], records: Records, ui: Ui, clock: Callable[[], float]):
        self.plan = plan
        self.records = records
        self.ui = ui
        self.clock = clock
        self.unsendable: KlingError | None = None  # why no more requests may be sent
        self.paused_until = 0.0
        self.backpressure = BACKPRESSURE_WAIT[0]

    def mark(self, sends: list[J]) -> KlingError | None:
        """Each send's mark: its row in the journal, and a batch line's, marked sent with the
        business id of this attempt. If a batch's marks cannot be written, the error: none of
        these is sent, nor any later one (the next run could send it again); requests already
        out are followed to the end. Without them (generate) a send goes all the same."""
        try:
            if self.plan.before_send is not None:
                self.plan.before_send(sends)
            for job in sends:
                assert job.body is not None, "a job that starts at send has a body"
                if not has_business_id(job.body):  # every send carries one (CLI.md)
                    job.body["client_business_id"] = new_business_id()
                source = self.plan.source
                line = (job.key, job.order, source) if job.key and source else None
                job.mark = self.records.sending(job.body, line)
        except KlingError as exc:
            from ..store.sqlite import JournalError  # here: `wait --help` needs no sqlite3

            if self.plan.source is None and isinstance(exc, JournalError):
                self.records.failed(exc)
                return None
            self.unsendable = exc
            self.ui.warn(f"{exc.message}; no more requests are sent")
            return exc
        return None

    def answered(self, job: J, task: TaskView) -> None:
        """Its task recorded in place of its mark (and its batch line's)."""
        assert job.body is not None
        if not self.records.submitted(task, job.body, job.key, job.mark):
            self.ui.warn(f"task {task.id} was submitted but not recorded: keep its id")
        if self.plan.after_send is not None:
            self.plan.after_send(job)
        self.backpressure = BACKPRESSURE_WAIT[0]

    def failed(self, job: J, exc: KlingError) -> bool:
        """Its request failed. True: not accepted, the account is at its limit; everyone
        waits, then it goes again."""
        if isinstance(exc, APIError) and (exc.code in LIMIT_CODES or exc.status == 429):
            self.unsent(job)
            self.paused_until = self.clock() + (exc.retry_after or self.backpressure)
            self.backpressure = min(self.backpressure * 2, BACKPRESSURE_WAIT[1])
            return True
        if isinstance(exc, SubmitUncertain):
            self.in_doubt(job, exc.message)  # `kling list` shows it
        elif isinstance(exc, (APIError, ServiceUnavailable)):
            self.unsent(job)  # refused (4xx), or it never reached the service
        return False

    def in_doubt(self, job: J, reason: str) -> None:
        """Its answer lost: it may have made a task (listed as `uncertain`, with why)."""
        assert job.body is not None
        self.records.uncertain(job.mark, job.body, reason)

    def unsent(self, job: J) -> None:
        """A send that made no task: its mark withdrawn, and its plan told (a batch line may
        be sent again by the next run)."""
        self.records.not_sent(job.mark)
        if self.plan.not_sent is not None:
            self.plan.not_sent(job)
