"""The steps commands share: upload, submit (recorded at once), wait, save, and exit codes."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from . import download, interrupts, progress, tasks
from .env import Env
from .errors import (
    ExitCode,
    Interrupted,
    KlingError,
    NoVideoURL,
    SubmitUncertain,
    TaskFailed,
    VideoURLExpired,
    WaitTimeout,
)
from .output import Output, quiet_result


def upload(env: Env, path: Path, quiet: bool = False) -> dict[str, Any]:
    display = progress.transfer_display(env, f"uploading {path.name}", quiet)
    size = path.stat().st_size
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        display.advance(min(sent, size), size)

    try:
        with closing(display):
            return env.client.upload_image(path, on_bytes=on_bytes)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while uploading {path}; nothing was submitted") from None


def image_url(env: Env, path: Path, quiet: bool = False) -> str:
    """The URL of a local image: uploaded once, then reused from the journal while fresh."""
    digest = file_sha256(path)
    cached = env.try_journal(lambda j: j.cached_upload(digest))
    if cached:
        return cached
    url = str(upload(env, path, quiet)["url"])
    env.try_journal(lambda j: j.remember_upload(digest, url))
    return url


def upload_all(env: Env, paths: Sequence[Path], quiet: bool = False) -> dict[Path, str]:
    """The URL of each local image, uploaded in turn (or taken from the journal's cache)."""
    return {path: image_url(env, path, quiet) for path in paths}


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()  # images are at most 10 MB


def submit(env: Env, body: dict[str, Any], output: str | None = None) -> tasks.TaskView:
    """POST the generation and record the task id in the journal before anything else.
    `output`: where the video is to go, for the command that resumes after a Ctrl-C."""
    try:
        task = env.client.create_task(body)
    except SubmitUncertain as exc:
        env.record_attempt(body, exc.message)  # so `kling list` shows what was tried
        raise
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted while submitting: the service may have made the task "
            "(no second request was sent)",
            hint="look for it with `kling list` or on the provider's dashboard "
            "before submitting again",
        ) from None
    with interrupts.held() as gate:
        if not env.record_submitted(task, body):
            env.warn(f"task {task.id} was submitted but not recorded: keep its id")
    if gate.pending:
        raise interrupted([task.id], output)
    return task


def wait(
    env: Env,
    task_ids: Sequence[str],
    *,
    interval: float | None,
    timeout: float | None,
    quiet: bool = False,
    known: dict[str, tasks.TaskView] | None = None,
    output: str | None = None,
) -> list[tasks.Tracked]:
    """Poll until every task is final (or the timeout); Ctrl-C says how to resume."""
    display = progress.wait_display(env, quiet)

    seen: dict[str, str] = {}

    def poll(task_id: str) -> tasks.TaskView:
        task = env.client.get_task(task_id)
        if seen.get(task_id) != task.status:  # the journal is written when the status changes
            seen[task_id] = task.status
            env.record_update(task)
        return task

    try:
        with closing(display):
            return tasks.wait_for(
                task_ids,
                poll,
                interval=interval,
                timeout=timeout,
                on_update=display.update,
                clock=env.clock,
                sleep=env.sleep,
                known=known,
            )
    except KeyboardInterrupt:
        raise interrupted(task_ids, output) from None


def resume_command(task_ids: Sequence[str], output: str | Path | None) -> str:
    """The command that takes up the whole job again: the same tasks, the same -o."""
    words = ["kling", "wait", *task_ids] + (["-o", str(output)] if output is not None else [])
    return " ".join(shlex.quote(w) for w in words)


def interrupted(task_ids: Sequence[str], output: str | Path | None = None) -> Interrupted:
    ids = " ".join(task_ids)
    return Interrupted(
        f"interrupted; {'the tasks go' if len(task_ids) > 1 else 'the task goes'} on at the "
        f"service: {ids}",
        hint=f"resume with: {resume_command(task_ids, output)}",
    )


def save_video(
    env: Env, task: tasks.TaskView, target: Path, *, force: bool, quiet: bool = False
) -> Path:
    """Download a completed task's video to `target`, with a byte bar, and record the file."""
    task_id = task.id
    display = progress.transfer_display(env, f"downloading {task_id}", quiet)
    try:
        with closing(display):
            path, fresh_task = fetch_video(env, task, target, force=force, on_bytes=display.advance)
    except KeyboardInterrupt:
        raise interrupted([task_id], target) from None
    if fresh_task is not task:
        env.record_update(fresh_task)
    env.record_file(task_id, path)
    return path


def fetch_video(
    env: Env,
    task: tasks.TaskView,
    target: Path,
    *,
    force: bool,
    on_bytes: download.OnBytes | None = None,
) -> tuple[Path, tasks.TaskView]:
    """Download a task's video; an expired URL is fetched afresh from the service once.

    Returns the saved path and the task as last seen. No journal, no display: safe to call
    from worker threads.
    """
    for fresh in (False, True):
        expiry = task.expires_at
        if fresh or (expiry is not None and expiry < time.time()):
            task = env.client.get_task(task.id)
        url = task.video_url
        if url is None:
            raise no_video_url(task)
        try:
            path = download.download(
                url, target, env.client.open_video, force=force, on_bytes=on_bytes
            )
        except VideoURLExpired:
            if fresh:
                raise
            continue
        return path, task
    raise AssertionError("unreachable")


def no_video_url(task: tasks.TaskView) -> NoVideoURL:
    return NoVideoURL(
        f"task {task.id} is completed but no http(s) video URL was found in it",
        hint=f"the task as the service gave it: {json.dumps(dict(task.raw))[:2000]}",
        task_id=task.id,
    )


def first_failure(codes: Sequence[int]) -> int:
    """With several tasks: the code of the first one, in argument order, that did not complete."""
    return next((code for code in codes if code != ExitCode.OK), ExitCode.OK)


def describe_failure(env: Env, tracked: tasks.Tracked, output: str | None = None) -> None:
    """Say on stderr why a task did not complete (its JSON, if any, goes to stdout)."""
    view = tracked.view
    task_id = tracked.task_id
    if tracked.error is not None:
        tracked.error.task_id = task_id
        env.error(tracked.error)
    elif view.failed:
        if not env.json_errors:  # with --json the failed task itself is the answer
            env.error(TaskFailed(view.failure_message()))
    elif not view.final:
        env.error(
            WaitTimeout(
                f"task {task_id} is not final yet (still {view.status})",
                hint=f"wait for it with: {resume_command([task_id], output)}",
                task_id=task_id,
            )
        )


def finish(
    env: Env,
    out: Output,
    tracked: Sequence[tasks.Tracked],
    *,
    save: bool,
    output: str | None,
    force: bool,
    quiet: bool,
) -> int:
    """Save what completed (when asked), print every task in order, return the exit code."""
    output_dir = env.setting("output_dir")
    output_dir = Path(output_dir) if output_dir else None
    codes: list[int] = []
    for t in tracked:
        code = t.exit_code
        files: list[Path] = []
        try:
            if code == ExitCode.OK and save:
                target = download.target_for(t.task_id, output, output_dir)
                files.append(save_video(env, t.view, target, force=force, quiet=quiet))
            elif code == ExitCode.OK and t.view.video_url is None:
                raise no_video_url(t.view)
        except Interrupted:
            raise
        except KlingError as exc:
            code = exc.exit_code
            exc.task_id = exc.task_id or t.task_id
            env.error(exc)
        else:
            if code != ExitCode.OK:
                describe_failure(env, t, output)
        if t.view:
            out.task(t.view, files, quiet_value=quiet_result(t.view, files))
        codes.append(code)
    return first_failure(codes)
