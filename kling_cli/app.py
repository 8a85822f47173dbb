"""The root typer app: global options -> Env, command registration, errors -> exit codes."""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Collection
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from . import __version__
from .clock import FakeClock
from .commands.common import KlingCommand
from .context import PROGRESS_MODES, Ui, progress_choice, to_devnull
from .env import Env
from .errors import ExitCode, KlingError, UsageError

JSON_RUN = "kling.json"  # ctx.meta key: the command line asked for --json
EVENTS_RUN = "kling.events"  # ctx.meta key: --progress json (or KLING_PROGRESS=json)


def asks_for_events(args: list[str]) -> bool:
    """Whether this run reports in JSON events, decided before options are parsed (a usage
    error is reported before the root callback runs)."""
    flag = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith("--progress="):
            flag = arg.partition("=")[2]
        elif arg == "--progress" and i + 1 < len(args):
            flag = args[i + 1]
    return progress_choice(flag, os.environ) == "json"


class KlingGroup(TyperGroup):
    """Turns our exceptions into a one-line message and the CLI.md exit code, in one place."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [name for name in COMMAND_ORDER if name in self.commands or name in SUMMARIES]

    def get_command(self, ctx: Any, name: str) -> Any:
        """Build a command (and import its module) only when it is asked for: a run of one
        command does not pay for the others' imports and option parsing."""
        if name not in self.commands and name in SUMMARIES:
            module = importlib.import_module(f".commands.{name}", __package__)
            if name in LAZY_GROUPS:  # `config`: a typer app
                self.commands[name] = typer.main.get_group(module.app)
            else:
                info = CommandInfo(name=name, cls=KlingCommand, callback=module.command)
                self.commands[name] = get_command_from_info(
                    info, pretty_exceptions_short=True, rich_markup_mode=None
                )
        elif name not in self.commands:  # a typo: "did you mean" looks at every command
            for other in SUMMARIES:
                self.get_command(ctx, other)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of `kling --help`, from SUMMARIES: no command's module imported."""
        with formatter.section("Commands"):  # each summary whole: write_dl wraps it
            formatter.write_dl([(name, SUMMARIES[name]) for name in self.list_commands(ctx)])

    def make_context(self, info_name: Any, args: list[str], *rest: Any, **kwargs: Any) -> Any:
        argv = list(args)  # parsing consumes `args`
        try:  # parsing prints --help and --version: to a reader that may have gone
            return super().make_context(info_name, args, *rest, **kwargs)
        except BrokenPipeError:
            stdout_gone()
        except typer.TyperException as exc:  # the root's options: `kling --bogus list`
            usage_failed(exc, misplaced(self, getattr(exc, "option_name", None), argv))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:  # bare `kling`: help is what was asked for
            print(ctx.get_help(), file=sys.stdout)
            ctx.exit(0)
        args = hoist_global_options(self, ctx, args)
        ctx.meta[JSON_RUN] = "--json" in args[: args.index("--") if "--" in args else None]
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
        except typer.TyperException as exc:  # a usage error of a command: click's words
            usage_failed(exc)
        except Exception as exc:  # a bug: one line, the traceback only with --verbose
            env = ctx.obj if isinstance(ctx.obj, Env) else None
            if env is not None and env.ui.verbose:
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
    to_devnull(sys.stdout)
    to_devnull(sys.stderr)
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


def report(
    exc: KlingError, env: Env | None, *, json_run: bool = False, events_run: bool = False
) -> None:
    """An error on stderr through Ui.error, the one place for its forms; before the root
    callback has made this run's Env (an error in the root's own options), a plain Ui made
    for the report, in the form the command line asked for."""
    if env is not None:
        env.ui.error(exc)
        return
    Ui.system(progress="json" if events_run else "off", json_errors=json_run).error(exc)


def misplaced(group: TyperGroup, option: str | None, argv: list[str]) -> UsageError | None:
    """`kling -q list`, `kling --json status ID`: an option of the command, given before it,
    where only kling's own options go. The error names the command it belongs to, or the
    misspelt command that kept it from being found."""
    if not option or option not in argv:
        return None
    words = [arg for arg in argv[argv.index(option) + 1 :] if not arg.startswith("-")]
    ctx = group.context_class(group, info_name="kling")
    for i, word in enumerate(words):
        if word not in SUMMARIES:
            continue
        path, command = [word], group.get_command(ctx, word)
        if isinstance(command, TyperGroup) and i + 1 < len(words):  # `config list`
            sub = command.get_command(ctx, words[i + 1])
            if sub is not None:
                path, command = [word, words[i + 1]], sub
        if command is None or option not in value_taking(command.params):
            return None
        name = " ".join(["kling", *path])
        return UsageError(
            f"no such option: {option} (it is an option of `{name}`, and goes after it)",
            hint=f"put it after the command: {name} {option} ...",
        )
    for word in words:  # `kling --json wiat`: no command follows, but one was misspelt
        try:
            group.resolve_command(ctx, [word])
        except typer.TyperException as exc:
            if "Did you mean" in exc.format_message():
                return UsageError(our_words(exc.format_message()), hint="see: kling --help")
    commands = [group.get_command(ctx, name) for name in LAZY_COMMANDS]
    if any(option in value_taking(command.params) for command in commands if command):
        return UsageError(
            f"no such option: {option} (it is an option of the commands, and goes after one)",
            hint=f"put it after a command: kling COMMAND {option} ...",
        )
    return None


def usage_failed(exc: typer.TyperException, instead: UsageError | None = None) -> NoReturn:
    """A usage error found by the parser (missing argument, bad option value, no such option
    or command), in the words and form of ours: `kling: error: ...` and a hint naming the
    help to read (or `instead`, an error of ours that says more), exit 2; a JSON document
    with --json; an `error` event with --progress json.
    Anything else click raises (its help for `kling config` alone) goes its own way."""
    code = getattr(exc, "exit_code", None)
    if type(exc).__name__ == "NoArgsIsHelpError" or code != ExitCode.USAGE:
        raise exc
    ctx = getattr(exc, "ctx", None)
    meta = ctx.meta if ctx is not None else {}
    where = ctx.command_path if ctx is not None else "kling"
    error = instead or UsageError(our_words(exc.format_message()), hint=f"see: {where} --help")
    report(error, None, json_run=bool(meta.get(JSON_RUN)), events_run=bool(meta.get(EVENTS_RUN)))
    raise typer.Exit(ExitCode.USAGE) from None


def our_words(message: str) -> str:
    """Click's sentence as one of our messages: `No such command 'gen'. Did you mean
    'generate'?` -> `no such command 'gen'; did you mean 'generate'?`."""
    text = " ".join(message.split()).rstrip(".")
    text = re.sub(r"\.? Did you mean", "; did you mean", text)
    if text[:2].isalpha() and text[1:2].islower():  # not a name such as PROMPT
        text = text[0].lower() + text[1:]
    return text


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
    "gallery": "Write FOLDER/index.html: a page to review every video of the folder in a browser.",
    "sandbox": "Run a local simulator of the service: no key, no credits.",
    "balance": "Show the remaining and used quota of the API key.",
    "doctor": "Check the setup: config file, key, service, proxies, journal and output folder.",
}
# Command groups (a typer app in kling_cli.commands.NAME) -> their help, imported as commands are.
LAZY_GROUPS = {"config": "Read and change the config file (api_key, base_url, model, mode, ...)."}
SUMMARIES = {**LAZY_COMMANDS, **LAZY_GROUPS}
COMMAND_ORDER = [
    "generate", "wait", "status", "download", "upload", "list", "batch", "gallery", "balance",
    "config", "sandbox", "doctor",
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
    env = Env.for_run(
        api_key=api_key,
        base_url=base_url,
        profile=profile,
        sandbox=sandbox_flag,
        verbose=verbose,
        progress=progress,
        no_progress=no_progress,
        json_errors=bool(ctx.meta.get(JSON_RUN)),
    )
    if clock is not None:
        env.clock, env.sleep = clock.now, clock.sleep
    ctx.obj = env
