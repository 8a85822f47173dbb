"""The root typer app: global options -> Env, command registration, errors -> exit codes."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Collection
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from . import __version__
from .commands import config as config_cmd
from .env import Env, FakeClock
from .errors import ExitCode, KlingError, UsageError


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
EVENTS_RUN = "kling.events"  # ctx.meta key: --progress json (or KLING_PROGRESS=json)


def asks_for_events(args: list[str]) -> bool:
    """Whether this run reports in JSON events, decided before options are parsed (a usage
    error is reported before the root callback runs)."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--progress=json" or (arg == "--progress" and args[i + 1 : i + 2] == ["json"]):
            return True
    return os.environ.get("KLING_PROGRESS", "").strip().lower() == "json"


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
        with formatter.section("Commands"):  # each summary whole: write_dl wraps it
            formatter.write_dl([(name, cmd.get_short_help_str(10_000)) for name, cmd in rows])

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:  # parsing prints --help and --version: to a reader that may have gone
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            stdout_gone()

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:  # bare `kling`: help is what was asked for
            print(ctx.get_help(), file=sys.stdout)
            ctx.exit(0)
        args = hoist_global_options(self, ctx, args)
        ctx.meta[JSON_RUN] = "--json" in args
        ctx.meta[EVENTS_RUN] = asks_for_events(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            stdout_gone()
        except KlingError as exc:
            report(exc, ctx.obj if isinstance(ctx.obj, Env) else None)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # a usage error: typer prints it and exits 2 ...
            json_run, events_run = ctx.meta.get(JSON_RUN), ctx.meta.get(EVENTS_RUN)
            if not ((json_run or events_run) and hasattr(exc, "format_message")):
                raise
            # ... but a --json run gets a JSON document for it, like any other error, and a
            # --progress json run its `error` event.
            error = UsageError(exc.format_message()).document()
            document = {"event": "error", "time": round(time.time(), 3)} if events_run else {}
            print(json.dumps({**document, "error": error}), file=sys.stderr)
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


NOT_HOISTED = ("version", "help", "install_completion", "show_completion")  # root-only
PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for `seq 1 1000000 | head -1`


def stdout_gone() -> NoReturn:
    """The reader of our output went away (`kling list -q | head -1`): stop quietly with the
    status of SIGPIPE, as coreutils and gh do. Whatever was being written has already been
    cleaned up on the way here (temporary files removed, journal transactions rolled back)."""
    for stream in (sys.stdout, sys.stderr):
        # Point the stream at devnull, so the interpreter's final flush does not raise again
        # and print "Exception ignored ... BrokenPipeError".
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            break
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):  # no real descriptor (a test's buffer)
            pass
        finally:
            os.close(devnull)
    raise typer.Exit(PIPE_CLOSED)


def hoist_global_options(group: TyperGroup, ctx: Any, args: list[str]) -> list[str]:
    """Move the root's options that come after the command name in front of it, as gh allows:
    `kling generate x --sandbox -v` is `kling --sandbox -v generate x`.

    Left where they are: everything after `--` (a prompt may be `-v`), an option the command
    itself defines under the same name (`config set --profile`), and the value of any option
    that takes one (`--model -v` gives the model the name -v)."""
    roots = value_taking(group.get_params(ctx), skip=NOT_HOISTED)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        name, eq, _ = args[i].partition("=")
        i += 2 if roots.get(name) and not eq else 1
    if i >= len(args) or args[i] == "--":
        return args
    command = group.get_command(ctx, args[i])
    if command is None:
        return args  # a typo: let click say so
    own = value_taking(command.params)
    moved: list[str] = []
    kept: list[str] = []
    j = i + 1
    while j < len(args):
        token = args[j]
        if token == "--":
            kept += args[j:]
            break
        name, eq, _ = token.partition("=")
        if name in own or not token.startswith("-"):
            kept.append(token)
            if own.get(name) and not eq and j + 1 < len(args):
                kept.append(args[j + 1])
                j += 1
            elif not token.startswith("-") and isinstance(command, TyperGroup):
                sub = command.get_command(ctx, token)  # `config set`: its options count too
                if sub is not None:
                    own = value_taking(sub.params)
                    command = sub
        elif name in roots:
            moved.append(token)
            if roots[name] and not eq and j + 1 < len(args):
                moved.append(args[j + 1])
                j += 1
        else:
            kept.append(token)
        j += 1
    return args[:i] + moved + [args[i]] + kept


def value_taking(params: list[Any], skip: Collection[str] = ()) -> dict[str, bool]:
    """Option spelling -> whether the option takes a value, for the options in `params`."""
    found: dict[str, bool] = {}
    for param in params:
        if param.param_type_name != "option" or param.name in skip:
            continue
        takes_value = not (param.is_flag or param.count)
        for spelling in (*param.opts, *param.secondary_opts):
            found[spelling] = takes_value
    return found


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
    "doctor": "Check the setup: config file, key, service, proxies, journal and output folder.",
}
COMMAND_ORDER = [
    "generate", "wait", "status", "download", "upload", "list", "batch", "balance", "config",
    "sandbox", "doctor",
]  # fmt: skip

app = typer.Typer(
    name="kling",
    cls=KlingGroup,  # bare `kling` prints the help on stdout (KlingGroup.parse_args)
    # Plain click help: keeps our [env: ...] brackets and \b example blocks, and skips rich.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,
)


PROGRESS_MODES = ("auto", "live", "plain", "json", "off")


def _progress_modes(incomplete: str) -> list[str]:
    return [mode for mode in PROGRESS_MODES if mode.startswith(incomplete)]


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
    progress: Annotated[
        str | None,
        typer.Option(
            "--progress",
            metavar="auto|live|plain|json|off",
            help="How progress shows on stderr: live on a terminal, plain lines elsewhere "
            "(auto), JSON events for programs (json), or none [env: KLING_PROGRESS].",
            show_default=False,
            autocompletion=_progress_modes,
        ),
    ] = None,
    no_progress: Annotated[
        bool,
        typer.Option("--no-progress", help="No progress bars or status lines (= --progress off)."),
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
    # A test hands the app its fake clock: CliRunner().invoke(app, args, obj=clock).
    clock = ctx.obj if isinstance(ctx.obj, FakeClock) else None
    env = Env.system(
        flags={"api_key": api_key, "base_url": base_url},
        verbose=verbose,
        no_progress=no_progress,
        **({"clock": clock.now, "sleep": clock.sleep} if clock else {}),
    )
    env.profile = profile or env.environ.get("KLING_PROFILE") or None
    env.progress = (progress or env.environ.get("KLING_PROGRESS") or "auto").strip().lower()
    if env.progress not in PROGRESS_MODES:
        env.progress = "auto"  # so that the error itself is reported plainly
        where = "--progress" if progress else "KLING_PROGRESS"
        raise UsageError(f"{where} must be one of {', '.join(PROGRESS_MODES)}")
    env.use_sandbox = sandbox_flag or env.environ.get("KLING_SANDBOX", "") not in ("", "0", "false")
    ctx.obj = env


app.add_typer(config_cmd.app, name="config")
