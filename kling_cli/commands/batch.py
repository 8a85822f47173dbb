"""kling batch FILE: submit, wait for and download many generations from a JSON Lines file."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import completion, download
from ..balance import Balance
from ..env import Env
from ..errors import APIError, AuthError, KlingError, ServiceUnavailable
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
    gallery: bool = False  # --gallery: the folder's index.html when the run ends


def named_output(env: Env, opts: batch.Options) -> Callable[[batch.Line], str | None]:
    """A line's `output` file that exists already (and is not this batch's own) stops the
    run first."""

    def problem(line: batch.Line) -> str | None:
        if opts.output is None or line.output is None or opts.force:
            return None
        target = opts.output / line.output
        if not target.exists():
            return None
        if env.journal.batch_line(line.key) is not None:  # damaged: stop before sending
            return None  # this batch's own, from an earlier run
        return f"{target} already exists"

    return problem


def run_batch(env: Env, opts: BatchOptions) -> int:
    from .. import batch

    run = opts.run
    if run.output is None:  # as `download`: -o, else output_dir, else here
        output_dir = env.setting("output_dir")
        run.output = Path(output_dir) if output_dir else Path.cwd()
    source = batch.Source(env, opts.file)
    with closing(source):
        index = source.check(env, run.shard, named_output(env, run))
        download.check_output(Path(str(run.output) + "/"), [], run.force)
        with batch.one_run_at_a_time(env, source.identity, run.shard):
            if not index.numbers:  # more shards than lines: this one has nothing to do
                env.note(f"batch: shard {run.shard} has no lines of this file; nothing to do")
                return 0
            return _run_lines(env, opts, source, index)


def _run_lines(env: Env, opts: BatchOptions, source: batch.Source, index: batch.Index) -> int:
    from .. import batch
    from ..batch.display import batch_display

    assert opts.run.output is not None
    opts.run.output = opts.run.output.resolve()
    env.http_pool_size = max(10, opts.run.parallel)
    out = Output(env, opts.format)
    display = batch_display(env, len(index.numbers), opts.format is Format.QUIET)
    tally = batch.Tally()

    def show(line: batch.Line) -> None:
        if opts.format is Format.JSON:
            out.json(line.document())
        elif opts.format is Format.QUIET:
            value = quiet_result(line.view, line.files) if line.error is None else ""
            if value:
                out.value(value)
        else:
            out.value(result_line(line))
        tally.add(line)
        runner.shown(line)

    in_order = InOrder[batch.Line](index.numbers, show)
    records = None
    if opts.gallery:  # the lines that made no video, kept for the page (gallery/files.py)
        from ..gallery import LineRecords

        records = LineRecords(opts.run.output, env.warn)

    def on_done(line: batch.Line) -> None:
        display.done(line)
        in_order.done(line)
        if records is not None:
            records(line)

    runner = batch.Runner(env, source, index, opts.run, display.change, on_done, display.transfer)
    ran = False
    try:
        to_send = runner.prepare()  # first: a journal that cannot say what was sent stops us
        opts.run.output.mkdir(parents=True, exist_ok=True)
        if to_send:
            warn_if_no_balance(env)
        ran = True
        runner.run()
    finally:
        display.close()
        if opts.gallery and ran:  # Ctrl-C too: a page of what is done so far
            write_gallery(env, opts.run.output, opts.run.force)
    summarize(env, tally, opts.run.shard)
    return tally.code


def write_gallery(env: Env, folder: Path, force: bool) -> None:
    """--gallery: the page, said on stderr (stdout has the lines' results); a page that
    cannot be written is a warning, not a failed batch."""
    from .gallery import describe
    from .gallery import write_gallery as write

    try:
        page, shown = write(env, folder, force=force)
    except KlingError as exc:
        env.warn(f"gallery not written: {exc.message}")
        return
    env.note(f"gallery: {page} ({describe(shown)})")


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


def summarize(env: Env, tally: batch.Tally, shard: batch.Shard) -> None:
    """Counts on stderr, and the lines that did not complete, with why."""
    of = "" if shard.whole else f" (shard {shard})"
    lines = counted(tally.lines, "line")
    env.note(f"batch: {lines}{of}, {tally.completed} completed, {tally.failed} not")
    for number, code, why, hint in tally.examples:
        env.note(f"  line {number}: exit {code}: {why}")
        if hint:
            env.note(f"    {hint}")
    if tally.failed > len(tally.examples):
        env.note(f"  ... and {tally.failed - len(tally.examples)} more (see --json)")


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
    gallery: Annotated[
        bool | None,
        typer.Option(
            "--gallery/--no-gallery",
            rich_help_panel="Saving",
            help="Write index.html in the folder when the run ends: a page to review every "
            "video, and the lines that made none [default: the gallery setting, else off].",
            show_default=False,
        ),
    ] = None,
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
      kling batch prompts.jsonl --shard 2/3 -o out-2/   # the 2nd of 3 CI jobs
      kling batch prompts.jsonl -o videos/ --gallery    # then open videos/index.html
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
        stall_timeout=setting_or(env, stall_timeout, "stall_timeout"),
        interval=setting_or(env, interval, "poll_interval"),
    )
    if gallery is None:
        gallery = bool(env.setting("gallery"))
    raise typer.Exit(run_batch(env, BatchOptions(file, choose(env, json, quiet), run, gallery)))
