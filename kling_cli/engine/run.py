"""Running the engine for a command: `generate`, `wait` and `download` (run_tasks) and `batch`
(batch/runner.py) alike. The engine is handed what it works with, a display shows progress on
stderr, each result goes to stdout in the order of the tasks, a reason is given for each that
did not complete, and the exit code is that of the first of those."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Generic

from .. import interrupts, progress
from ..errors import (
    ExitCode,
    Interrupted,
    LocalFileError,
    Stalled,
    TaskFailed,
    WaitTimeout,
    first_failure,
)
from ..output import Format, Output, quiet_result
from .jobs import J, Job, Plan, Stage
from .scheduler import Engine

if TYPE_CHECKING:
    from ..env import Env


def engine_for(
    env: Env, plan: Plan[J], display: progress.Display, on_done: Callable[[J], None]
) -> Engine[J]:
    """An engine with the client, records and clock of this run, reporting to `display` (what
    else it says goes out of the display's way: `Screen`)."""
    return Engine(
        plan,
        client=lambda: env.client,
        records=env.records,
        ui=env.ui,
        clock=env.clock,
        sleep=env.sleep,
        display=display,
        on_done=on_done,
    )


def run_tasks(
    env: Env,
    jobs: list[Job],
    plan: Plan[Job],
    enter: Callable[[Engine[Job], Job], None],
    fmt: Format,
    output: str | None,
) -> int:
    """Run `jobs` (each put in by `enter`) until done; print each in order; the exit code."""
    display = progress.display(env.ui, fmt is Format.QUIET or not plan.follow)
    out = Output(env.ui, fmt)

    def code(job: Job) -> int:
        if not plan.follow and job.error is None:
            return ExitCode.OK  # sent and recorded: that was all it was asked
        return job.code

    def show(job: Job) -> None:
        if code(job) != ExitCode.OK:
            describe(env, job, output)
        if not job.view and job.error is not None:
            return  # never seen (an unknown id): its error is all there is to say
        if not plan.follow:
            quiet = [str(job.task_id)]  # sent, not followed: -q prints the id
        else:  # -q: the file or URL; nothing for a task that ended in an error
            quiet = quiet_result(job.view, job.files) if job.error is None else []
        if job.task_id:
            try:
                out.task(job.view, job.files, quiet_value=quiet)
            except LocalFileError as exc:  # stdout refused it: the task is made all the same
                exc.task_id = job.task_id
                raise

    in_order = InOrder[Job](
        [job.order for job in jobs], lambda job: display.above(lambda: show(job))
    )
    engine = engine_for(env, plan, display, in_order.done)
    for job in jobs:
        enter(engine, job)
    try:
        with closing(display):
            engine.run()
    except KeyboardInterrupt as stop:
        signum = interrupts.signal_of(stop)
        pending = engine.pending()
        sending = [job.sent_as or "" for job in pending if job.stage is Stage.SENDING]
        if sending:  # its answer never came: it is an uncertain send, found by its business id
            raise Interrupted(
                "interrupted while submitting; the service may have made the task "
                "(no second request was sent)",
                hint=f"`kling status {' '.join(sending)}` finds it if it was made; "
                "`kling list` shows the send as `uncertain`",
                signum=signum,
            ) from None
        task_ids = [job.task_id for job in pending if job.task_id]
        raise interrupted(env, task_ids, output, signum) from None
    return first_failure(code(job) for job in jobs)


def saved_as(env: Env) -> Callable[[str, Path], bool]:
    """Whether a file is the video the journal saved for a task, as it was (a re-run of wait or
    download finds it done)."""

    def check(task_id: str, path: Path) -> bool:
        return env.records.attempt(lambda journal: journal.saved_as(task_id, path)) is True

    return check


def save_to(env: Env, output: str | None) -> Callable[[Job], Path]:
    """Where each task's video goes: `-o` (a file, or a folder), else output_dir, else here."""
    from .. import download

    output_dir = env.setting("output_dir")
    folder = Path(output_dir) if output_dir else None
    return lambda job: download.target_for(str(job.task_id), output, folder)


def describe(env: Env, job: Job, output: str | None = None) -> None:
    """Say on stderr why a task did not complete (its JSON, if any, goes to stdout)."""
    if job.error is not None:
        job.error.task_id = job.error.task_id or job.task_id
        if isinstance(job.error, Stalled) and job.task_id and not job.error.hint:
            # As a timeout: the task goes on at the service, and waiting for it can resume.
            job.error.hint = resume_hint(env, [job.task_id], output, "wait for it with")
        env.ui.error(job.error)
    elif job.view.failed:
        if not env.ui.json_errors:  # with --json the failed task itself is the answer
            env.ui.error(TaskFailed(job.view.failure_message()))
    elif not job.view.final and job.task_id:
        env.ui.error(
            WaitTimeout(
                job.why_not_completed(),
                hint=resume_hint(env, [job.task_id], output, "wait for it with"),
                task_id=job.task_id,
            )
        )


class InOrder(Generic[J]):
    """Results in the order of the jobs, whatever order they finish in, so that two runs
    print the same: a job waits for the ones before it."""

    def __init__(self, orders: Sequence[int], show: Callable[[J], None]):
        self._orders = orders
        self._next = 0
        self._held: dict[int, J] = {}
        self._show = show

    def done(self, job: J) -> None:
        self._held[job.order] = job
        while self._next < len(self._orders) and self._orders[self._next] in self._held:
            self._show(self._held.pop(self._orders[self._next]))
            self._next += 1


def resume_hint(
    env: Env,
    task_ids: list[str],
    output: str | Path | None,
    lead: str,
    command: str | None = None,
) -> str:
    """How to take the job up again: the command for the whole job (the same tasks, the same
    -o; or `command`, where another one resumes it); never a command that cannot work (a
    --sandbox run's tasks end with its own sandbox)."""
    if env.use_sandbox:
        return (
            "this command's own sandbox stopped with it, and its tasks with it: "
            "run `kling sandbox` for one that stays"
        )
    if command is None:
        words = ["kling", "wait", *task_ids] + (["-o", str(output)] if output is not None else [])
        command = " ".join(shlex.quote(w) for w in words)
    return f"{lead}: {command}"


SHOWN_IDS = 20  # the task ids an interrupt names at most (a screenful); the rest are counted


def interrupted(
    env: Env,
    task_ids: list[str],
    output: str | Path | None = None,
    signum: int = 2,
    command: str | None = None,
) -> Interrupted:
    """Ctrl-C (or SIGTERM, SIGHUP): what goes on at the service, and how to pick it up
    (`command`: the command that does, when it is not `kling wait` the same tasks)."""
    if not task_ids:
        return Interrupted("interrupted; nothing was submitted", signum=signum)
    many = len(task_ids) > 1
    named = " ".join(task_ids[:SHOWN_IDS])
    if len(task_ids) > SHOWN_IDS:
        named += f" and {len(task_ids) - SHOWN_IDS} more"
    return Interrupted(
        f"interrupted; {'the tasks go' if many else 'the task goes'} on at the service: {named}",
        hint=resume_hint(env, task_ids, output, "resume with", command),
        signum=signum,
    )
