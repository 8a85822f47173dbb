"""The root typer app: global options -> Env, command registration, errors -> exit codes."""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from . import __version__
from .commands import config as config_cmd
from .env import Env
from .errors import ExitCode, KlingError


class KlingCommand(TyperCommand):
    """Plain help, with the options in groups: each option's rich_help_panel names its group."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
            else:
                panel = getattr(param, "rich_help_panel", None) or "Other options"
                groups.setdefault(panel, []).append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for title, records in groups.items():
            with formatter.section(title):
                formatter.write_dl(records)


JSON_RUN = "kling.json"  # ctx.meta key: the command line asked for --json


class KlingGroup(TyperGroup):
    """Turns our exceptions into a one-line message and the CLI.md exit code, in one place."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [name for name in COMMAND_ORDER if name in self.commands or name in LAZY_COMMANDS]

    def get_command(self, ctx: Any, name: str) -> Any:
        """Build a command (and import its module) only when it is asked for: a run of one
        command does not pay for the others' imports and option parsing."""
        if name not in self.commands and name in LAZY_COMMANDS:
            module = importlib.import_module(f".commands.{name}", __package__)
            info = CommandInfo(name=name, cls=KlingCommand, callback=module.command)
            self.commands[name] = get_command_from_info(
                info, pretty_exceptions_short=True, rich_markup_mode=None
            )
        elif name not in self.commands:  # a typo: "did you mean" looks at every command
            for other in LAZY_COMMANDS:
                self.get_command(ctx, other)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of `kling --help`, without importing every command's module."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or TyperCommand(name, help=LAZY_COMMANDS[name])
            rows.append((name, command))
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[JSON_RUN] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KlingError as exc:
            report(exc, ctx.obj if isinstance(ctx.obj, Env) else None)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # a usage error: typer prints it and exits 2 ...
            if not (ctx.meta.get(JSON_RUN) and hasattr(exc, "format_message")):
                raise
            # ... but a --json run gets a JSON document for it, like any other error.
            error = {"type": "usage", "message": exc.format_message(), "exit_code": 2}
            print(json.dumps({"error": error}), file=sys.stderr)
            raise typer.Exit(ExitCode.USAGE) from None
        except Exception as exc:  # a bug: one line, the traceback only with --verbose
            env = ctx.obj if isinstance(ctx.obj, Env) else None
            if env is not None and env.verbose:
                traceback.print_exc()
            print(f"kling: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            print("kling: hint: run again with --verbose for the traceback", file=sys.stderr)
            raise typer.Exit(ExitCode.INTERNAL) from None
        finally:
            env = ctx.obj
            if isinstance(env, Env):
                env.close()


def report(exc: KlingError, env: Env | None) -> None:
    if env is not None:
        env.error(exc)
    else:
        print(f"kling: error: {exc.message}", file=sys.stderr)


# Commands by name -> their one-line summary. A command's module (kling_cli.commands.NAME) is
# imported when the command runs; `kling --help` lists them from these summaries alone.
# tests/commands/test_app.py checks each against the first line of the command's docstring.
LAZY_COMMANDS = {
    "generate": "Submit one generation; with --wait or -o, wait for it and save the video.",
    "wait": "Poll tasks until each is final, showing live progress on stderr.",
    "status": "Query tasks once and print where each stands.",
    "download": "Save the videos of completed tasks (to output_dir, or here, named after the "
    "task id).",
    "upload": "Upload local images and print their URLs, for use with `generate -i URL`.",
    "list": "List the tasks this machine submitted, newest first (from the local journal).",
    "batch": "Submit, wait for and download many generations from a JSON Lines file.",
    "sandbox": "Run a local simulator of the service: no key, no credits.",
    "balance": "Show the remaining and used quota of the API key.",
}
COMMAND_ORDER = [
    "generate", "wait", "status", "download", "upload", "list", "batch", "balance", "config",
    "sandbox",
]  # fmt: skip

app = typer.Typer(
    name="kling",
    cls=KlingGroup,
    no_args_is_help=True,
    # Plain click help: keeps our [env: ...] brackets and \b example blocks, and skips rich.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        print(f"kling {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", metavar="KEY", help="API key [env: KLING_API_KEY].", show_default=False
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            metavar="URL",
            help="API base URL [env: KLING_BASE_URL].",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="Use the config keys of profile NAME [env: KLING_PROFILE].",
            show_default=False,
        ),
    ] = None,
    sandbox_flag: Annotated[
        bool,
        typer.Option("--sandbox", help="Use the built-in local simulator [env: KLING_SANDBOX=1]."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="HTTP trace on stderr (key redacted).")
    ] = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No progress bars or status lines.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print the version.", is_eager=True, callback=_version
        ),
    ] = False,
) -> None:
    """Generate videos with Kling v3 Omni through ToAPIs: submit, wait, download.

    Results go to stdout (--json for JSON, -q for bare values); progress and errors to stderr.
    Exit codes: 0 ok, 2 usage, 3 auth, 4 rejected, 5 unreachable, 6 task failed, 7 timeout,
    130 interrupted.
    """
    env = Env.system(
        flags={"api_key": api_key, "base_url": base_url},
        verbose=verbose,
        no_progress=no_progress,
    )
    env.profile = profile or env.environ.get("KLING_PROFILE") or None
    env.use_sandbox = sandbox_flag or env.environ.get("KLING_SANDBOX", "") not in ("", "0", "false")
    ctx.obj = env


app.add_typer(config_cmd.app, name="config")
