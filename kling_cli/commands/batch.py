"""kling batch FILE: submit, wait for and download many generations from a JSON Lines file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import download, progress
from ..balance import Balance
from ..env import Env
from ..errors import APIError, AuthError, ServiceUnavailable, UsageError, first_failure
from ..follow import InOrder
from ..output import Format, Output, choose, counted, quiet_result
from .common import (
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    QuietOpt,
    StallTimeoutOpt,
    TimeoutOpt,
    env_of,
    setting_or,
)

if TYPE_CHECKING:  # the engine (threads, hashing) is imported only when a batch runs
    from .. import batch


@dataclass
class BatchOptions:
    file: str
    format: Format
    run: batch.Options


def read_source(env: Env, file: str) -> tuple[str, Path | None]:
    if file == "-":
        return env.read_stdin("the batch file `-`"), None
    path = Path(file).expanduser()
    try:
        return path.read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def check_outputs(env: Env, lines: list[batch.Line], opts: batch.Options) -> None:
    """Named outputs that exist already (and are not this batch's own) stop the run first."""
    if opts.output is None:
        return
    download.check_output(Path(str(opts.output) + "/"), [], opts.force)
    problems = []
    for line in lines:
        target = opts.output / line.output if line.output else None
        if target is None or not target.exists() or opts.force:
            continue
        if env.journal.batch_line(line.key) is None:
            problems.append(f"line {line.number}: {target} already exists")
    if problems:
        raise UsageError("; ".join(problems[:5]), hint="pass --force to overwrite")


def run_batch(env: Env, opts: BatchOptions) -> int:
    from .. import batch

    text, path = read_source(env, opts.file)
    source = batch.source_identity(path, text)
    base_dir = path.parent if path else Path.cwd()
    lines = batch.parse(text, source, base_dir, env)
    with batch.one_run_at_a_time(env, source):
        return _run_lines(env, opts, lines, source)


def _run_lines(env: Env, opts: BatchOptions, lines: list[batch.Line], source: str) -> int:
    from .. import batch

    if opts.run.output is None:  # as `download`: -o, else output_dir, else here
        output_dir = env.setting("output_dir")
        opts.run.output = Path(output_dir) if output_dir else Path.cwd()
    check_outputs(env, lines, opts.run)
    opts.run.output = opts.run.output.resolve()
    env.http_pool_size = max(10, opts.run.parallel)
    out = Output(env, opts.format)
    display = progress.batch_display(env, len(lines), opts.format is Format.QUIET)

    def show(line: batch.Line) -> None:
        if opts.format is Format.JSON:
            out.json(line.document())
        elif opts.format is Format.QUIET:
            value = quiet_result(line.view, line.files) if line.error is None else ""
            if value:
                out.value(value)
        else:
            out.value(result_line(line))

    in_order = InOrder([line.number for line in lines], show)

    def on_done(line: batch.Line) -> None:
        display.done(line)
        in_order.done(line)

    runner = batch.Runner(env, lines, opts.run, source, display.change, on_done, display.transfer)
    try:
        runner.resume()  # first: a journal that cannot say what was sent stops us here
        opts.run.output.mkdir(parents=True, exist_ok=True)
        if runner.to_send:
            warn_if_no_balance(env)
        runner.run()
    finally:
        display.close()
    summarize(env, lines)
    return first_failure(line.code for line in lines)


def warn_if_no_balance(env: Env) -> None:
    """One look at the key's balance before paying for many lines: a warning when it reads 0
    or less (the service is the judge: it may still accept). A service that does not answer
    the balance is no reason to stop."""
    try:
        balance = Balance.of(env.client.get_balance(retry=False))
    except (APIError, ServiceUnavailable, AuthError) as exc:
        env.trace(f"balance not checked: {exc.message}")
        return
    if balance.exhausted:
        env.warn(
            f"the balance of this API key reads {balance.remaining_text} "
            f"(used {balance.used_text}): the service may refuse the tasks"
        )


def result_line(line: batch.Line) -> str:
    """`LINE  ID  STATUS  DETAIL`, tab-separated: one per input line."""
    status = "error" if line.error is not None and not line.view else line.view.status
    if line.error is not None:
        detail = line.error.message
    elif line.files:
        detail = " ".join(str(f) for f in line.files)
    elif line.view.failed:
        detail = line.view.error_text
    else:
        detail = line.view.video_url or ""
    return "\t".join([str(line.number), line.task_id or "-", status, detail])


def summarize(env: Env, lines: list[batch.Line]) -> None:
    """Counts on stderr, and the lines that did not complete, with why."""
    completed = sum(1 for line in lines if line.code == 0)
    failed = [line for line in lines if line.code != 0]
    env.note(f"batch: {counted(len(lines), 'line')}, {completed} completed, {len(failed)} not")
    for line in failed[:20]:
        env.note(f"  line {line.number}: exit {line.code}: {line.why_not_completed()}")
        if line.error and line.error.hint:
            env.note(f"    {line.error.hint}")
    if len(failed) > 20:
        env.note(f"  ... and {len(failed) - 20} more (see --json)")


def command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines file, or - for stdin.", metavar="FILE")],
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel",
            "-p",
            rich_help_panel="Running",
            metavar="N",
            help="Sends and downloads in flight at once (polls go up to 100 at once).",
            min=1,
            max=64,
        ),
    ] = 4,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            rich_help_panel="Saving",
            metavar="DIR",
            help="Save every video in this folder [default: output_dir, else here].",
        ),
    ] = None,
    sidecar: Annotated[
        bool,
        typer.Option(
            "--sidecar",
            rich_help_panel="Saving",
            help="Write NAME.json beside each video: prompt, task, times.",
        ),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            rich_help_panel="Running",
            help="Forget earlier runs of this file; send every line again.",
        ),
    ] = False,
    force: ForceOpt = False,
    timeout: TimeoutOpt = None,
    stall_timeout: StallTimeoutOpt = None,
    interval: IntervalOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Submit, wait for and download many generations from a JSON Lines file.

    Each line is an object with "prompt" and optionally "images", "mode", "duration",
    "aspect_ratio", "model", "metadata", "set" (extra body fields) and "output" (a file name).
    Every line is checked before anything is sent. Re-running the same file sends nothing
    twice: it picks up where the last run stopped.

    \b
    Examples:
      kling batch prompts.jsonl -o videos/
      kling batch prompts.jsonl -o videos/ --parallel 8 --sidecar --json > results.jsonl
      jq -c '{prompt: .}' -R < prompts.txt | kling batch - -o out/
    """
    from .. import batch

    env = env_of(ctx)
    run = batch.Options(
        parallel=parallel,
        output=output,
        sidecar=sidecar,
        restart=restart,
        force=force,
        timeout=setting_or(env, timeout, "timeout"),
        stall_timeout=setting_or(env, stall_timeout, "stall_timeout"),
        interval=setting_or(env, interval, "poll_interval"),
    )
    raise typer.Exit(run_batch(env, BatchOptions(file, choose(env, json, quiet), run)))
