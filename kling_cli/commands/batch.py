"""kling batch FILE: submit, wait for and download many generations from a JSON Lines file."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import completion, download, present, progress
from ..api.balance import Balance
from ..engine.run import InOrder
from ..env import Env
from ..errors import APIError, AuthError, KlingError, ServiceUnavailable, UsageError
from ..output import Format, Output, choose, counted, line_widths, quiet_result
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


def run_batch(env: Env, opts: BatchOptions) -> int:
    from .. import batch

    run = opts.run
    if run.output is None:  # as `download`: -o, else output_dir, else here
        output_dir = env.setting("output_dir")
        run.output = Path(output_dir) if output_dir else Path.cwd()
    folder = run.output

    def named_output(line: batch.Line) -> str | None:
        """A line's `output` file that exists already (and is not this batch's own) stops
        the run first."""
        if line.output is None or run.force or not (folder / line.output).exists():
            return None
        sent = env.journal.batch_line(line.key, line.legacy_key)  # damaged: stop before sending
        if sent is not None:
            return None  # this batch's own, from an earlier run
        return f"{folder / line.output} already exists"

    source = batch.Source(env, opts.file)
    with closing(source):
        index = source.check(env, run.shard, named_output)
        if not index.lines_in_file:  # as a shard with no lines: nothing to do
            name = "stdin" if source.path is None else str(source.path)
            env.ui.note(f"batch: {name} has no lines; nothing to do")
            return 0
        download.check_output(f"{run.output}/", [], run.force)  # a folder: a str keeps the /
        with batch.one_run_at_a_time(env, source.lock_names, run.shard):
            if not index.numbers:  # more shards than lines: this one has nothing to do
                env.ui.note(f"batch: shard {run.shard} has no lines of this file; nothing to do")
                return 0
            return _run_lines(env, opts, source, index)


def _run_lines(env: Env, opts: BatchOptions, source: batch.Source, index: batch.Index) -> int:
    from .. import batch

    assert opts.run.output is not None
    opts.run.output = opts.run.output.resolve()
    quiet = opts.format is Format.QUIET
    display = progress.display(env.ui, quiet, lines=len(index.numbers))
    out = Output(env.ui, opts.format)
    tally = batch.Tally()
    widths = line_widths(max(index.numbers))

    def show(line: batch.Line) -> None:
        if opts.format is Format.JSON:
            out.json(line.document())
        elif opts.format is Format.QUIET:
            for value in quiet_result(line.view, line.files) if line.error is None else []:
                out.value(value)
        else:
            out.result(result_fields(line), widths)
        tally.add(line)
        runner.shown(line)

    in_order = InOrder[batch.Line](index.numbers, lambda line: display.above(lambda: show(line)))
    on_done: Callable[[batch.Line], None] = in_order.done
    if opts.gallery:  # the lines that made no video, kept for the page (gallery/files.py)
        from ..gallery import LineRecords

        records = LineRecords(opts.run.output, env.ui.warn)

        def done_and_recorded(line: batch.Line) -> None:
            in_order.done(line)
            records(line)

        on_done = done_and_recorded

    runner = batch.Runner(env, source, index, opts.run, display, on_done)
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
        env.ui.warn(f"gallery not written: {exc.message}")
        return
    env.ui.note(f"gallery: {page} ({describe(shown)})")


def warn_if_no_balance(env: Env) -> None:
    """One look at the key's balance before paying for many lines: a warning when it reads 0
    or less (the service is the judge: it may still accept). A service that does not answer
    the balance is no reason to stop."""
    try:
        balance = Balance.of(env.client.get_balance(retry=False))
    except (APIError, ServiceUnavailable, AuthError) as exc:
        env.ui.trace(f"balance not checked: {exc.message}")
        return
    if balance.exhausted:
        env.ui.warn(
            f"the balance of this API key reads {balance.remaining_text} "
            f"(used {balance.used_text}): the service may refuse the tasks"
        )


def result_fields(line: batch.Line) -> list[str]:
    """`LINE  ID  STATUS  DETAIL`: one row per input line (output.line_widths)."""
    shown = present.task(line.view, line.files, line.error)
    status = "error" if line.error is not None and not line.view else line.view.status
    return [str(line.number), line.task_id or "-", status, shown.detail]


def summarize(env: Env, tally: batch.Tally, shard: batch.Shard) -> None:
    """Counts on stderr, and the lines that did not complete, with why."""
    of = "" if shard.whole else f" (shard {shard})"
    lines = counted(tally.lines, "line")
    env.ui.note(f"batch: {lines}{of}: {tally.counts()}")
    for number, code, why, hint in tally.examples:
        env.ui.note(f"  line {number}: exit {code}: {why}")
        if hint:
            env.ui.note(f"    {hint}")
    if tally.failed > len(tally.examples):
        env.ui.note(f"  ... and {tally.failed - len(tally.examples)} more (see --json)")


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
            help="Send every line of the file (of the shard) again, each paid again.",
        ),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            rich_help_panel="Running",
            help="Send again the lines whose task failed or whose request was refused; "
            "completed and running lines are left alone.",
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

    Each line is an object with "prompt" and optionally "images" (URLs or files), the Omni
    keys "refs", "first_frame", "end_frame", "videos", "video_refer", "keep_sound",
    "elements" and "audio", and "watermark", "business_id", "mode", "duration",
    "aspect_ratio", "model", "metadata", "set" (extra body fields) and "output" (a file
    name). Every line is checked before anything is sent.

    A line is known by what it asks, not by where it stands: a re-run (lines added, moved or
    removed, another path, a copy, stdin) sends only the lines not sent before and picks up
    the rest where they stopped. --retry-failed sends the failed lines again; --restart,
    every line (paid again).

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
    if restart and retry_failed:
        raise UsageError(
            "--retry-failed and --restart do not go together: --restart sends every line "
            "again, --retry-failed only the failed ones"
        )
    run = batch.Options(
        shard=batch.Shard() if shard is None else batch.Shard.parse(shard),
        parallel=parallel,
        output=output,
        sidecar=sidecar,
        restart=restart,
        retry_failed=retry_failed,
        force=force,
        timeout=setting_or(env, timeout, "timeout"),
        stall_timeout=setting_or(env, stall_timeout, "stall_timeout"),
        interval=setting_or(env, interval, "poll_interval"),
    )
    if gallery is None:
        gallery = bool(env.setting("gallery"))
    raise typer.Exit(run_batch(env, BatchOptions(file, choose(json, quiet), run, gallery)))
