"""kling batch FILE: submit, wait for and download many generations from a JSON Lines file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import completion, download, progress
from ..balance import Balance
from ..env import Env
from ..errors import APIError, AuthError, ServiceUnavailable, UsageError
from ..follow import InOrder, first_failure
from ..output import Format, Output, choose, quiet_result
from .common import (
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    QuietOpt,
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


def read_source(file: str) -> tuple[str, Path | None]:
    if file == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("the file is `-` but nothing is piped to stdin")
        try:
            return sys.stdin.buffer.read().decode("utf-8"), None
        except UnicodeDecodeError as exc:
            raise UsageError(f"the batch file on stdin is not UTF-8 text ({exc.reason})") from None
    path = Path(file).expanduser()
    try:
        return path.read_text(encoding="utf-8"), path
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def check_outputs(env: Env, lines: list[batch.Line], opts: batch.Options) -> None:
    """Named outputs that exist already (and are not this batch's own) stop the run first."""
    from ..journal import Journal

    if opts.output is None:
        return
    download.check_output(Path(str(opts.output) + "/"), [], opts.force)
    problems = []
    for line in lines:
        target = opts.output / line.output if line.output else None
        if target is None or not target.exists() or opts.force:
            continue
        if env.try_journal(partial(Journal.batch_line, key=line.key)) is None:
            problems.append(f"line {line.number}: {target} already exists")
    if problems:
        raise UsageError("; ".join(problems[:5]), hint="pass --force to overwrite")


def run_batch(env: Env, opts: BatchOptions) -> int:
    from .. import batch

    text, path = read_source(opts.file)
    source = batch.source_identity(path, text)
    base_dir = path.parent if path else Path.cwd()
    shard = opts.run.shard
    lines = batch.parse(text, source, base_dir, env, shard)
    with batch.one_run_at_a_time(env, source, shard):
        if not lines:  # more shards than lines: this one has nothing to do
            env.note(f"batch: shard {shard} has no lines of this file; nothing to do")
            return 0
        return _run_lines(env, opts, lines, source)


def _run_lines(env: Env, opts: BatchOptions, lines: list[batch.Line], source: str) -> int:
    from .. import batch

    if opts.run.output is None:  # as `download`: -o, else output_dir, else here
        output_dir = env.setting("output_dir")
        opts.run.output = Path(output_dir) if output_dir else Path.cwd()
    check_outputs(env, lines, opts.run)
    opts.run.output.mkdir(parents=True, exist_ok=True)
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
        runner.resume()
        if runner.to_send:
            warn_if_no_balance(env)
        runner.run()
    finally:
        display.close()
    summarize(env, lines, opts.run.shard)
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


def summarize(env: Env, lines: list[batch.Line], shard: batch.Shard) -> None:
    """Counts on stderr, and the lines that did not complete, with why."""
    completed = sum(1 for line in lines if line.code == 0)
    failed = [line for line in lines if line.code != 0]
    of = "" if shard.whole else f" (shard {shard})"
    env.note(f"batch: {len(lines)} lines{of}, {completed} completed, {len(failed)} not")
    for line in failed[:20]:
        why = line.error.message if line.error else line.view.failure_message()
        env.note(f"  line {line.number}: exit {line.code}: {why}")
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
            help="Requests in flight at once.",
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
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            rich_help_panel="Running",
            metavar="K/N",
            help="Only lines L with (L-1) % N == K-1: N runs (CI jobs) share the file.",
            show_default=False,
            autocompletion=completion.shards,
        ),
    ] = None,
    force: ForceOpt = False,
    timeout: TimeoutOpt = None,
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
      kling batch prompts.jsonl --shard 2/3 -o out-2/   # the 2nd of 3 CI jobs
    """
    from .. import batch

    env = env_of(ctx)
    run = batch.Options(
        shard=batch.Shard() if shard is None else batch.Shard.parse(shard),
        parallel=parallel,
        output=output,
        sidecar=sidecar,
        restart=restart,
        force=force,
        timeout=setting_or(env, timeout, "timeout"),
        interval=setting_or(env, interval, "poll_interval"),
    )
    raise typer.Exit(run_batch(env, BatchOptions(file, choose(env, json, quiet), run)))
