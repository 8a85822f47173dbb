"""Option aliases shared by commands, so each option reads and behaves the same everywhere."""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from typer._click.types import FloatParamType, FloatRange  # typer's click; no public name
from typer.core import TyperCommand

from ..completion import task_ids
from ..config import MIN_POLL_INTERVAL
from ..env import Env
from ..text import check_utf8

if TYPE_CHECKING:
    from ..engine.jobs import Job


class KlingCommand(TyperCommand):
    """Every kling command: plain help with the options in groups (each option's
    rich_help_panel names its group), and the usage line as click writes it, `PROMPT` and
    `[VALUE]`, not typer's `{PROMPT}`."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        groups: dict[str | None, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
            else:
                groups.setdefault(getattr(param, "rich_help_panel", None), []).append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for title, records in groups.items():  # ungrouped options: "Options" when alone
            with formatter.section(title or ("Other options" if len(groups) > 1 else "Options")):
                formatter.write_dl(records)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                pieces += param.get_usage_pieces(ctx)
                continue
            name = param.make_metavar(ctx)  # without usage=True: no braces
            pieces.append(name if param.required or name.startswith("[") else f"[{name}]")
        return pieces

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:  # `--mode` with no value: click names no command
            if getattr(exc, "ctx", False) is None:
                exc.ctx = ctx  # type: ignore[attr-defined]  # click's UsageError has it
            raise


class FiniteFloat(FloatRange):
    """A float option in a range that also refuses nan and infinities: `nan` passes every
    `>=` check (an --interval of nan polled in a tight loop) and `inf` would mean "never"."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = FloatParamType.convert(self, value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)  # the range


def number_option(
    *names: str,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    **kw: Any,
) -> Any:
    """typer.Option for a float: every number option of every command is made here."""
    return typer.Option(*names, click_type=FiniteFloat(min=min, max=max, min_open=min_open), **kw)


def json_option(help: str = "One JSON document per task on stdout.") -> Any:
    """typer.Option for --json: each command says what its documents are."""
    return typer.Option("--json", rich_help_panel="Output", help=help, show_default=False)


JsonOpt = Annotated[bool, json_option()]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        rich_help_panel="Output",
        help="Print one value per line and nothing else.",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    str | None,  # not Path: Path("videos/") would forget that the slash means a folder
    typer.Option(
        "--output",
        "-o",
        rich_help_panel="Saving",
        metavar="PATH",
        help="Save the video here: a file, or a folder (named after the task id).",
        show_default=False,
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", rich_help_panel="Saving", help="Overwrite an existing file.", show_default=False
    ),
]
TimeoutOpt = Annotated[
    float | None,
    number_option(
        "--timeout",
        metavar="SECONDS",
        rich_help_panel="Waiting",
        help="Give up waiting after this many seconds (exit 7).",
        min=0,
    ),
]
StallTimeoutOpt = Annotated[
    float | None,
    number_option(
        "--stall-timeout",
        metavar="SECONDS",
        rich_help_panel="Waiting",
        help="Give up on a task whose status and progress have not changed for this many "
        "seconds (exit 7) [default: no limit].",
        min=0,
        min_open=True,
        show_default=False,
    ),
]
IntervalOpt = Annotated[
    float | None,
    number_option(
        "--interval",
        metavar="SECONDS",
        rich_help_panel="Waiting",
        help="Seconds between polls [default: fast at first, then as the service advises].",
        min=MIN_POLL_INTERVAL,
    ),
]
ParallelOpt = Annotated[
    int,
    typer.Option(
        "--parallel",
        "-p",
        metavar="N",
        rich_help_panel="Waiting",
        help="Downloads in flight at once (polls, cheap GETs, go up to 200 at once).",
        min=1,
        max=64,
    ),
]


def utf8_ids(ctx: typer.Context, given: list[str]) -> list[str]:
    """Task ids and business ids are text: one whose bytes are not UTF-8 could be neither
    looked up nor sent (exit 2, before anything else)."""
    if not ctx.resilient_parsing:  # not while completing a half-typed id
        for ref in given:
            check_utf8(ref, f"task id {ref}", hint="give the id as kling printed it")
    return given


TaskIdsArg = Annotated[
    list[str],
    typer.Argument(
        help="Task ids.",
        metavar="TASK_ID...",
        show_default=False,
        autocompletion=task_ids,
        callback=utf8_ids,
    ),
]


def jobs_for(env: Env, given: list[str]) -> list[Job]:
    """A job for each id given to status, wait or download: a task id, or the business id of
    a send (CLI.md "Business ids"). One the journal knows as an uncertain send is asked for
    by its business id; one whose task is known, by that task's id."""
    from ..engine.jobs import Job
    from ..store.journal import Journal

    jobs = []
    for order, ref in enumerate(given):
        entry = env.records.attempt(partial(Journal.by_business_id, business_id=ref))
        if entry is not None and entry.uncertain:
            jobs.append(Job(order, business_id=ref))
        else:
            jobs.append(Job(order, entry.id if entry is not None else ref))
    return jobs


def env_of(ctx: typer.Context) -> Env:
    env = ctx.find_root().obj
    assert isinstance(env, Env), "the root callback sets the Env"
    return env


def check_where_submitted(env: Env, task_ids: list[str]) -> None:
    """Before a task id is sent anywhere: where the journal says it was submitted. A task of
    a sandbox (a loopback base URL) lives only there: it is never sent to another address
    (exit 2, nothing sent). One of another service is sent, with a warning that says where
    it came from, since a bare 404 would not."""
    if env.use_sandbox:  # this command's own journal: none of its ids
        return
    from ..api.urls import is_loopback, same_service
    from ..errors import UsageError
    from ..store.journal import Journal

    for task_id in task_ids:
        entry = env.records.attempt(partial(Journal.get, task_id=task_id))
        if entry is None or same_service(entry.base_url, env.base_url):
            continue
        there = entry.base_url
        if is_loopback(urlsplit(there).hostname or ""):
            raise UsageError(
                f"task {task_id} was submitted to the sandbox at {there}, not to "
                f"{env.base_url}: it lives only in that sandbox",
                hint=f"with that sandbox running, use --base-url {there} (or KLING_BASE_URL)",
                task_id=task_id,
            )
        env.ui.warn(
            f"task {task_id} was submitted to {there}, not to {env.base_url}; if this service "
            f"does not know it, use --base-url {there} (or the --profile that sets it)"
        )


def setting_or(env: Env, value: float | None, name: str) -> float | None:
    """A flag's value, else the config's (flag > environment > file > default)."""
    return value if value is not None else env.setting(name)
