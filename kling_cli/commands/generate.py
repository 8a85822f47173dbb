"""kling generate PROMPT: submit one generation; optionally wait for it and save the video."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import completion, download, generation, workflow
from ..env import Env
from ..errors import UsageError
from ..output import Format, Output, choose
from .common import (
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    TimeoutOpt,
    env_of,
    setting_or,
)


@dataclass
class GenerateOptions:
    prompt: str
    images: list[str] = field(default_factory=list)
    mode: str | None = None
    duration: int | None = None
    aspect_ratio: str | None = None
    model: str | None = None
    metadata: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    wait: bool = False
    timeout: float | None = None
    interval: float | None = None
    output: str | None = None  # a string: a trailing slash means a folder
    force: bool = False
    dry_run: bool = False
    format: Format = Format.HUMAN


def read_prompt(prompt: str) -> str:
    if prompt != "-":
        return prompt
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("the prompt is `-` but nothing is piped to stdin")
    return sys.stdin.read().strip()


def run_generate(env: Env, opts: GenerateOptions) -> int:
    quiet = opts.format is Format.QUIET
    prompt = read_prompt(opts.prompt)
    images = [generation.classify_image(ref) for ref in opts.images]
    metadata = generation.parse_assignments(opts.metadata, "--metadata")
    extra = generation.parse_assignments(opts.sets, "--set")

    def body_with(urls: list[str]) -> dict[str, Any]:
        return generation.build_body(
            model=opts.model or env.setting("model"),
            prompt=prompt,
            mode=opts.mode or env.setting("mode"),
            duration=opts.duration if opts.duration is not None else env.setting("duration"),
            aspect_ratio=opts.aspect_ratio or env.setting("aspect_ratio"),
            image_urls=urls,
            metadata=metadata,
            extra=extra,
        )

    # Everything is checked before the first byte is sent: local paths stand in for their URLs.
    body = body_with([str(ref) for _, ref in images])
    if opts.output is not None:
        download.check_output(opts.output, [], opts.force)
    if opts.dry_run:
        if any(kind == "file" for kind, _ in images):
            env.note("local images would be uploaded first; their paths stand in for URLs here")
        Output(env, Format.JSON).json(body)
        return 0
    if images and not generation.image_refs(prompt):
        env.note("the prompt has no <<<image_N>>>: the service will prepend <<<image_1>>>")

    urls = [
        workflow.image_url(env, Path(ref), quiet) if kind == "file" else str(ref)
        for kind, ref in images
    ]
    task = workflow.submit(env, body_with(urls))
    task_id = str(task["id"])
    out = Output(env, opts.format)
    if not (opts.wait or opts.output):
        out.task(task, quiet_value=task_id)
        if opts.format is Format.HUMAN:
            env.note(f"submitted; follow it with: kling wait {task_id}")
        return 0
    if not quiet:
        env.note(f"submitted {task_id}")
    tracked = workflow.wait(
        env,
        [task_id],
        interval=setting_or(env, opts.interval, "poll_interval"),
        timeout=setting_or(env, opts.timeout, "timeout"),
        quiet=quiet,
        known={task_id: task},
    )
    return workflow.finish(
        env,
        out,
        tracked,
        save=opts.output is not None,
        output=opts.output,
        force=opts.force,
        quiet=quiet,
    )


ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        rich_help_panel="Request",
        metavar="std|pro",
        help="std (720p) or pro (1080p).",
        autocompletion=completion.modes,
    ),
]


def command(
    ctx: typer.Context,
    prompt: Annotated[
        str, typer.Argument(help="What to generate; `-` reads it from stdin.", metavar="PROMPT")
    ],
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            "-i",
            rich_help_panel="Request",
            metavar="URL|PATH",
            help="Image URL or local file (uploaded first); repeatable.",
        ),
    ] = None,
    mode: ModeOpt = None,
    duration: Annotated[
        int | None,
        typer.Option(
            "--duration",
            rich_help_panel="Request",
            metavar="5|10",
            help="5 or 10 seconds.",
            autocompletion=completion.durations,
        ),
    ] = None,
    aspect_ratio: Annotated[
        str | None,
        typer.Option(
            "--aspect-ratio",
            rich_help_panel="Request",
            metavar="16:9|9:16|1:1",
            help="16:9, 9:16 or 1:1.",
            autocompletion=completion.aspect_ratios,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", rich_help_panel="Request", metavar="NAME", help="Model name."),
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            rich_help_panel="Request",
            metavar="KEY=VALUE",
            help="KEY=VALUE into `metadata`; repeatable.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            rich_help_panel="Request",
            metavar="KEY=VALUE",
            help="KEY=VALUE, any top-level body field (VALUE as JSON if it parses).",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", rich_help_panel="Waiting", help="Wait until the task is final."),
    ] = False,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            rich_help_panel="Output",
            help="Print the request body as JSON; send nothing.",
        ),
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Submit one generation; with --wait or -o, wait for it and save the video.

    \b
    Examples:
      kling generate "a red fox running through snow" -o fox.mp4
      kling generate "<<<image_1>>> waves hello" -i photo.jpg --mode pro --duration 10
      echo "a calm lake at dawn" | kling generate - -q     # prints the task id
    """
    opts = GenerateOptions(
        prompt=prompt,
        images=image or [],
        mode=mode,
        duration=duration,
        aspect_ratio=aspect_ratio,
        model=model,
        metadata=metadata or [],
        sets=set_ or [],
        wait=wait,
        timeout=timeout,
        interval=interval,
        output=output,
        force=force,
        dry_run=dry_run,
        format=choose(env_of(ctx), json_, quiet),
    )
    raise typer.Exit(run_generate(env_of(ctx), opts))
