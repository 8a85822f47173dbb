"""kling generate PROMPT: submit one generation; optionally wait for it and save the video."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from .. import completion
from ..env import Env
from ..output import Format, choose
from .common import (
    ForceOpt,
    IntervalOpt,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    StallTimeoutOpt,
    TimeoutOpt,
    env_of,
    setting_or,
)

if TYPE_CHECKING:
    from ..api.request import Image, Request


@dataclass
class GenerateOptions:
    prompt: str
    images: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    first_frame: str | None = None
    end_frame: str | None = None
    videos: list[str] = field(default_factory=list)
    video_refer: str | None = None
    keep_sound: bool = False
    elements: list[str] = field(default_factory=list)
    audio: bool | None = None
    watermark: bool | None = None
    business_id: str | None = None
    mode: str | None = None
    duration: int | None = None
    aspect_ratio: str | None = None
    model: str | None = None
    metadata: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    wait: bool = False
    timeout: float | None = None
    stall_timeout: float | None = None
    interval: float | None = None
    output: str | None = None  # a string: a trailing slash means a folder
    force: bool = False
    dry_run: bool = False
    format: Format = Format.HUMAN


def read_prompt(env: Env, prompt: str) -> str:
    return env.ui.read_stdin("the prompt `-`").strip() if prompt == "-" else prompt


def build_request(env: Env, opts: GenerateOptions) -> Request:
    """The options as a request model: every check it makes happens here, before sending."""
    from ..api.checks import new_business_id
    from ..api.images import classify_element, classify_image
    from ..api.request import Request, classify_video, parse_assignments

    def image(ref: str | None) -> Image | None:
        return classify_image(ref) if ref is not None else None

    metadata = parse_assignments(opts.metadata, "--metadata")
    extra = parse_assignments(opts.sets, "--set")
    business_id = opts.business_id
    if business_id is None and "client_business_id" not in {*metadata, *extra}:
        business_id = new_business_id()  # this send's own (CLI.md "Business ids")

    return Request(
        prompt=read_prompt(env, opts.prompt),
        model=opts.model or env.setting("model"),
        mode=opts.mode or env.setting("mode"),
        duration=opts.duration if opts.duration is not None else env.setting("duration"),
        duration_from=None if opts.duration is not None else env.set_in("duration"),
        aspect_ratio=opts.aspect_ratio or env.setting("aspect_ratio"),
        images=[classify_image(ref) for ref in opts.images],
        refs=[classify_image(ref) for ref in opts.refs],
        first_frame=image(opts.first_frame),
        end_frame=image(opts.end_frame),
        videos=[classify_video(ref) for ref in opts.videos],
        video_refer=opts.video_refer,
        keep_sound=opts.keep_sound,
        elements=[classify_element(given) for given in opts.elements],
        audio=opts.audio,
        watermark=opts.watermark,
        business_id=business_id,
        metadata=metadata,
        extra=extra,
    )


def run_generate(env: Env, opts: GenerateOptions) -> int:
    # The engine and its kin are imported here, not at the top: `generate --help` skips them.
    from .. import download, uploads
    from ..api import request
    from ..engine.jobs import Job, Plan
    from ..engine.run import run_tasks, save_to
    from ..engine.scheduler import Engine
    from ..output import Output

    quiet = opts.format is Format.QUIET
    wanted = build_request(env, opts)
    # Everything is checked before the first byte is sent: local paths stand in for their URLs.
    body = wanted.body()
    if opts.output is not None:
        download.check_output(opts.output, [], opts.force)
    waits = opts.wait or opts.output is not None
    given = [opts.timeout, opts.stall_timeout, opts.interval]
    if not waits and any(value is not None for value in given):
        env.ui.warn("--timeout, --stall-timeout and --interval apply only with --wait or -o")
    for note in request.notes(body):
        env.ui.note(note)
    for warning in request.warnings(body):
        env.ui.warn(warning)
    if opts.dry_run:
        if wanted.local_files():
            env.ui.note("local images would be uploaded first; their paths stand in for URLs here")
        Output(env.ui, Format.JSON).json(body)
        return 0

    _check_not_sent_before(env, body.get("client_business_id"))
    urls = uploads.urls_for(env.client, env.records, env.ui, wanted.local_files(), quiet=quiet)
    job = Job(0, body=wanted.body(urls))
    plan = Plan[Job](
        parallel=1,
        follow=waits,
        interval=setting_or(env, opts.interval, "poll_interval"),
        timeout=setting_or(env, opts.timeout, "timeout"),
        stall_timeout=setting_or(env, opts.stall_timeout, "stall_timeout"),
        force=opts.force,
        target=save_to(env, opts.output) if opts.output is not None else None,
        after_send=None
        if quiet or not waits
        else lambda job: env.ui.note(f"submitted {job.task_id}"),
    )
    code = run_tasks(env, [job], plan, Engine.send, opts.format, opts.output)
    if job.task_id and not waits:
        if env.use_sandbox:  # its sandbox ends with this command: `kling wait` could not
            env.ui.note(
                "submitted to this command's own sandbox, which stops with it: add --wait or "
                "-o to see a task through, or run `kling sandbox` for one that stays"
            )
        elif opts.format is Format.HUMAN:
            env.ui.note(f"submitted; follow it with: kling wait {job.task_id}")
    return code


def _check_not_sent_before(env: Env, business_id: object) -> None:
    """A business id of yours that this service was sent before is not sent again (API.md: a
    request that may have reached the service must not be sent twice; it may not refuse it)."""
    from ..api.urls import same_service
    from ..errors import UsageError

    if not isinstance(business_id, str):
        return
    given = business_id
    sent = env.records.attempt(lambda journal: journal.by_business_id(given))
    if sent is None or not same_service(sent.base_url, env.base_url):
        return
    if sent.uncertain:
        what, then = "its send is uncertain", f"`kling status {given}` looks for its task"
    else:
        what, then = f"task {sent.id}", f"`kling wait {given}` follows that task"
    raise UsageError(
        f"business id {given} was sent before ({what}); it is not sent twice",
        hint=f"{then}; a new task needs a new business id",
    )


OMNI = "References (Omni form)"


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
    ref: Annotated[
        list[str] | None,
        typer.Option(
            "--ref",
            rich_help_panel=OMNI,
            metavar="IMAGE",
            help="Reference image (URL or file) into metadata.image_list; repeatable. "
            "<<<image_N>>> names the N-th entry: the first frame, then the --ref images.",
        ),
    ] = None,
    first_frame: Annotated[
        str | None,
        typer.Option(
            "--first-frame", rich_help_panel=OMNI, metavar="IMAGE", help="The first frame."
        ),
    ] = None,
    end_frame: Annotated[
        str | None,
        typer.Option(
            "--end-frame",
            rich_help_panel=OMNI,
            metavar="IMAGE",
            help="The end frame (needs --first-frame).",
        ),
    ] = None,
    video: Annotated[
        list[str] | None,
        typer.Option(
            "--video",
            rich_help_panel=OMNI,
            metavar="URL",
            help="Reference video at a public URL, into video_list (<<<video_N>>>); repeatable.",
        ),
    ] = None,
    video_refer: Annotated[
        str | None,
        typer.Option(
            "--video-refer",
            rich_help_panel=OMNI,
            metavar="base|feature",
            help="base: edit the video; feature: use it as a motion reference [default: base].",
            autocompletion=completion.video_refers,
            show_default=False,
        ),
    ] = None,
    keep_sound: Annotated[
        bool,
        typer.Option(
            "--keep-sound",
            rich_help_panel=OMNI,
            help="Keep the reference video's sound.",
            show_default=False,
        ),
    ] = False,
    element: Annotated[
        list[str] | None,
        typer.Option(
            "--element",
            rich_help_panel=OMNI,
            metavar="[ROLE=]URL|PATH|ID",
            help="An element (<<<element_N>>>): an image or video URL, a local image (uploaded "
            "first), or an id from your Kling element library; ROLE= names its role. Repeatable.",
        ),
    ] = None,
    audio: Annotated[
        bool | None,
        typer.Option(
            "--audio/--no-audio",
            rich_help_panel=OMNI,
            help="Generate sound (billed higher; not with --video) [default: not sent].",
            show_default=False,
        ),
    ] = None,
    watermark: Annotated[
        bool | None,
        typer.Option(
            "--watermark/--no-watermark",
            rich_help_panel="Request",
            help="Ask for a watermark, or for none (metadata.watermark) [default: not sent].",
            show_default=False,
        ),
    ] = None,
    business_id: Annotated[
        str | None,
        typer.Option(
            "--business-id",
            rich_help_panel="Request",
            metavar="ID",
            help="Your own id for the task (client_business_id; 1-64 of A-Z a-z 0-9 . _ : -); "
            "status, wait and download take it too [default: one kling makes].",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            rich_help_panel="Request",
            metavar="std|pro",
            help="std (720p) or pro (1080p).",
            autocompletion=completion.modes,
        ),
    ] = None,
    duration: Annotated[
        int | None,
        typer.Option(
            "--duration",
            rich_help_panel="Request",
            metavar="SECONDS",
            help="A whole number of seconds: 3 to 15 for kling-v3-omni (each model its own).",
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
    stall_timeout: StallTimeoutOpt = None,
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
      kling generate "the sun sets over the bay" --first-frame day.jpg --end-frame dusk.jpg
      kling generate "<<<image_1>>> dances like <<<video_1>>>" --ref me.png \\
          --video https://example.com/dance.mp4 -o dance.mp4
      echo "a calm lake at dawn" | kling generate - -q     # prints the task id
    """
    opts = GenerateOptions(
        prompt=prompt,
        images=image or [],
        refs=ref or [],
        first_frame=first_frame,
        end_frame=end_frame,
        videos=video or [],
        video_refer=video_refer,
        keep_sound=keep_sound,
        elements=element or [],
        audio=audio,
        watermark=watermark,
        business_id=business_id,
        mode=mode,
        duration=duration,
        aspect_ratio=aspect_ratio,
        model=model,
        metadata=metadata or [],
        sets=set_ or [],
        wait=wait,
        timeout=timeout,
        stall_timeout=stall_timeout,
        interval=interval,
        output=output,
        force=force,
        dry_run=dry_run,
        format=choose(json_, quiet),
    )
    raise typer.Exit(run_generate(env_of(ctx), opts))
