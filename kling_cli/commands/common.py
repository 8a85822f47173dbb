"""Option aliases shared by commands, so each option reads and behaves the same everywhere."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from typer._click.types import FloatParamType, FloatRange  # typer's click; no public name

from ..completion import task_ids
from ..config import MIN_POLL_INTERVAL
from ..env import Env


class FiniteFloat(FloatRange):
    """A float option in a range that also refuses nan and infinities: `nan` passes every
    `>=` check (an --interval of nan polled in a tight loop) and `inf` would mean "never"."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = FloatParamType.convert(self, value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)  # the range


def number_option(
    *names: str, min: float | None = None, max: float | None = None, **kw: Any
) -> Any:
    """typer.Option for a float: every number option of every command is made here."""
    return typer.Option(*names, click_type=FiniteFloat(min=min, max=max), **kw)


JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        rich_help_panel="Output",
        help="One JSON document per task on stdout.",
        show_default=False,
    ),
]
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
        help="Downloads in flight at once (polls, cheap GETs, go up to 100 at once).",
        min=1,
        max=64,
    ),
]
TaskIdsArg = Annotated[
    list[str],
    typer.Argument(
        help="Task ids.", metavar="TASK_ID...", show_default=False, autocompletion=task_ids
    ),
]


def env_of(ctx: typer.Context) -> Env:
    env = ctx.find_root().obj
    assert isinstance(env, Env), "the root callback sets the Env"
    return env


def setting_or(env: Env, value: float | None, name: str) -> float | None:
    """A flag's value, else the config's (flag > environment > file > default)."""
    return value if value is not None else env.setting(name)
