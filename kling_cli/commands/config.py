"""kling config set/get/unset/list/path: the per-user config file."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

import typer

from .. import config
from ..completion import config_keys, config_values
from ..env import Env
from ..errors import UsageError
from ..output import Format, Output
from .common import KlingCommand, env_of, json_option

app = typer.Typer(
    name="config",
    help="Read and change the config file (api_key, base_url, model, mode, ...).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

KeyArg = Annotated[
    str,
    typer.Argument(
        help=f"One of: {', '.join(config.KEYS)}.",
        metavar="KEY",
        show_default=False,
        autocompletion=config_keys,
    ),
]


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="The profile to read or change (default: the top-level keys).",
        show_default=False,
    ),
]


def env_for(ctx: typer.Context, profile: str | None) -> Env:
    """The Env, with the command's --profile (if given) taking over the global one."""
    env = env_of(ctx)
    if profile is not None:
        env = dataclasses.replace(env, profile=profile)
    config.check_profile(env.profile)
    return env


def shown(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # as the file spells it
        return "true" if value else "false"
    return config.mask(str(value)) if config.key(name).secret else str(value)


def read_secret(env: Env, name: str) -> str:
    """A secret from a hidden prompt, or from stdin when piped: never from the command line."""
    if env.ui.stdin_tty:
        import getpass

        return getpass.getpass(f"{name}: ", stream=env.ui.stderr)
    return env.ui.read_stdin(f"the value of {name}", line=True).strip()


def run_set(env: Env, name: str, value: str | None) -> int:
    k = config.key(name)
    source = "the command line"
    if value is None:
        if not k.secret:
            raise UsageError(f"config set {name} needs a value")
        value = read_secret(env, name)
        source = "the prompt" if env.ui.stdin_tty else "stdin"
    elif k.secret:
        env.ui.warn(
            f"the {name} given on the command line may stay in your shell history; "
            f"`kling config set {name}` with no value asks for it instead"
        )
    stored = config.set_value(env.config_path, name, value, env.profile, source)
    where = f"profile {env.profile} in " if env.profile else ""
    env.ui.note(f"{name} = {shown(name, stored)} ({where}{env.config_path})")
    return 0


NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class NegativeValues(KlingCommand):
    """`config set timeout -1`: a negative number is the VALUE (to be checked like any other),
    not an unknown option `-1`. The arguments go after a `--`, the options before it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" not in args and any(NEGATIVE_NUMBER.fullmatch(arg) for arg in args):
            from ..app import value_taking

            own = value_taking(self.get_params(ctx))
            options: list[str] = []
            arguments: list[str] = []
            i = 0
            while i < len(args):
                token = args[i]
                name, eq, _ = token.partition("=")
                if NEGATIVE_NUMBER.fullmatch(token) or not token.startswith("-"):
                    arguments.append(token)
                else:  # an option (an unknown one too: click names it), and its value
                    takes = 2 if own.get(name) and not eq else 1
                    options += args[i : i + takes]
                    i += takes - 1
                i += 1
            args = [*options, "--", *arguments]
        return super().parse_args(ctx, args)


@app.command("set", cls=NegativeValues)
def set_command(
    ctx: typer.Context,
    name: KeyArg,
    value: Annotated[
        str | None,
        typer.Argument(
            help="The value; for api_key, leave it out to be asked.",
            metavar="[VALUE]",
            autocompletion=config_values,
        ),
    ] = None,
    profile: ProfileOpt = None,
) -> None:
    """Set a key (validated first). `kling config set api_key` asks for the key, hidden.

    \b
    Examples:
      kling config set api_key            # prompts; or: echo "$KEY" | kling config set api_key
      kling config set mode pro
      kling config set output_dir ~/Videos/kling
      kling config set --profile work base_url https://gateway.example.com
    """
    raise typer.Exit(run_set(env_for(ctx, profile), name, value))


@app.command("get", cls=KlingCommand)
def get_command(ctx: typer.Context, name: KeyArg, profile: ProfileOpt = None) -> None:
    """Print a key's value in effect (flag > environment > file > default); api_key masked.

    \b
    Example:
      kling config get base_url
    """
    env = env_for(ctx, profile)
    config.key(name)
    value = env.setting(name)
    if value is not None:
        Output(env.ui, Format.HUMAN).value(shown(name, value))


@app.command("unset", cls=KlingCommand)
def unset_command(ctx: typer.Context, name: KeyArg, profile: ProfileOpt = None) -> None:
    """Remove a key from the config file (its default applies again).

    \b
    Example:
      kling config unset timeout
    """
    env = env_for(ctx, profile)
    where = f"profile {env.profile} in {env.config_path}" if env.profile else env.config_path
    if config.unset_value(env.config_path, name, env.profile):
        env.ui.note(f"{name} removed from {where}")
    else:
        env.ui.note(f"{name} was not set in {where}")


@app.command("list", cls=KlingCommand)
def list_command(
    ctx: typer.Context,
    json: Annotated[bool, json_option("Every key in one JSON document on stdout.")] = False,
    profile: ProfileOpt = None,
) -> None:
    """Every key, its value in effect and where it comes from; api_key masked.

    \b
    Examples:
      kling config list
      kling config list --json | jq -r .base_url.value
    """
    env = env_for(ctx, profile)
    out = Output(env.ui, Format.JSON if json else Format.HUMAN)
    settings = env.settings
    if json:
        out.json(
            {n: {"value": _json_value(n, s.value), "source": s.source} for n, s in settings.items()}
        )
        return
    width = max(map(len, settings))
    for name, setting in settings.items():
        value = shown(name, setting.value) or "-"
        out.value(f"{name:<{width}}  {value}  ({setting.source})")
    profiles = config.profile_names(env.config_path)
    if env.profile:  # its keys are the ones shown
        others = [name for name in profiles if name != env.profile]
        rest = f"; the others: {', '.join(others)}" if others else ""
        env.ui.note(f"profile {env.profile} shown (its keys over the top-level ones){rest}")
    elif profiles:
        env.ui.note(f"profiles: {', '.join(profiles)} (use one with --profile NAME)")


def _json_value(name: str, value: object) -> object:
    return shown(name, value) if config.key(name).secret and value is not None else value


@app.command("path", cls=KlingCommand)
def path_command(ctx: typer.Context) -> None:
    """Print the config file's path (it may not exist yet).

    \b
    Example:
      $EDITOR "$(kling config path)"
    """
    env = env_of(ctx)
    Output(env.ui, Format.HUMAN).value(str(env.config_path))
