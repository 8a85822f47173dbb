"""kling sandbox: run the local simulator of the service in the foreground."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from ..env import SANDBOX_KEY, Env
from ..errors import UsageError
from ..sandbox.defaults import FOREGROUND
from .common import env_of, number_option


def run_sandbox(
    env: Env,
    host: str,
    port: int,
    queue_seconds: float,
    run_seconds: float,
    faults: float,
    seed: int | None,
    balance: float | None = None,
    unlimited: bool = False,
    latency: float = 0.0,
) -> int:
    from ..sandbox.server import DEFAULT_BALANCE, Sandbox, SandboxConfig, run

    listening = False

    def ready(sandbox: Sandbox) -> None:
        nonlocal listening
        listening = True
        base_url = sandbox.base_url
        print(base_url, file=env.ui.stdout, flush=True)  # a script may read the port from stdout
        env.ui.note(f"sandbox serving the API at {base_url} (Ctrl-C stops it)")
        env.ui.note(f"try: export KLING_BASE_URL={base_url} KLING_API_KEY={SANDBOX_KEY}")
        env.ui.note('     kling generate "a red fox in the snow" -o fox.mp4')

    try:
        cfg = SandboxConfig(
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            faults=faults,
            latency=latency,
            seed=seed,
            balance=DEFAULT_BALANCE if balance is None else balance,
            unlimited=unlimited,
        )
    except ValueError as exc:  # e.g. --balance nan
        raise UsageError(str(exc)) from None
    try:
        run(host, port, cfg, on_ready=ready)
    except OSError as exc:
        if listening:  # not a setup problem (a closed stdout, say): the app's top level decides
            raise
        raise cannot_listen(host, port, exc) from None
    return 0


def cannot_listen(host: str, port: int, exc: OSError) -> UsageError:
    """--host or --port this machine cannot serve on: a usage error (exit 2), nothing ran."""
    if isinstance(exc, socket.gaierror):
        hint = "--host takes an address of this machine, such as 127.0.0.1 or 0.0.0.0"
    elif exc.errno == errno.EADDRINUSE:
        hint = "pick another with --port, or --port 0 for any free port"
    else:
        hint = None
    return UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint=hint)


def command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host", rich_help_panel="Listening", metavar="HOST", help="Address to listen on."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port",
            rich_help_panel="Listening",
            metavar="PORT",
            help="Port (0: any free port).",
            min=0,
            max=65535,
        ),
    ] = 8765,
    queue_seconds: Annotated[
        float,
        number_option(
            "--queue-seconds",
            rich_help_panel="Tasks",
            metavar="SECONDS",
            help="Time a task stays queued.",
            min=0,
        ),
    ] = FOREGROUND.queue_seconds,
    run_seconds: Annotated[
        float,
        number_option(
            "--run-seconds",
            rich_help_panel="Tasks",
            metavar="SECONDS",
            help="Time a task runs.",
            min=0,
        ),
    ] = FOREGROUND.run_seconds,
    faults: Annotated[
        float,
        number_option(
            "--faults",
            rich_help_panel="Faults",
            metavar="RATE",
            help="Share of answers (0-1) replaced by a fault.",
            min=0,
            max=1,
        ),
    ] = 0.0,
    latency: Annotated[
        float,
        number_option(
            "--latency",
            rich_help_panel="Faults",
            metavar="SECONDS",
            help="Delay added to every answer, as from a service far away (e.g. 0.05).",
            min=0,
        ),
    ] = 0.0,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", rich_help_panel="Faults", metavar="N", help="Seed for reproducible faults."
        ),
    ] = None,
    balance: Annotated[
        float | None,
        typer.Option(
            "--balance",
            rich_help_panel="Account",
            metavar="AMOUNT",
            help="Starting balance (default 100); each task spends some (1 for std 5 s).",
        ),
    ] = None,
    unlimited: Annotated[
        bool,
        typer.Option(
            "--unlimited",
            rich_help_panel="Account",
            help="No quota: the balance answers unlimited_quota true.",
        ),
    ] = False,
) -> None:
    """Run a local simulator of the service: no key, no credits.

    Tasks go queued -> in_progress -> completed. Both request forms are checked: image_urls,
    and the Omni metadata.image_list, video_list, metadata.element_list and audio, with
    <<<image_N>>>, <<<video_N>>> and <<<element_N>>> each counted in its own list.
    GET /v1/balance reports what the tasks spent.

    Prompt markers rehearse trouble: [fail], [fail-text], [no-video], [expired], [slow],
    [stall] (in_progress at 99% forever), [url:top|video_url|result.url|videos|list], and
    [status:WORD] for the other status spellings: completed ones (succeed, succeeded,
    success) end completed, failed ones (cancelled, canceled, expired, error) end failed,
    pending ones (submitted, processing, pending, running) or an unknown word are shown while
    the task runs.

    \b
    Examples:
      kling sandbox --port 8765 &
      KLING_BASE_URL=http://127.0.0.1:8765 KLING_API_KEY=x kling generate "[fail] a cat"
      kling sandbox --faults 0.2 --seed 1    # rehearse a flaky network
      kling sandbox --latency 0.05           # 50 ms before every answer
    """
    raise typer.Exit(
        run_sandbox(
            env_of(ctx),
            host,
            port,
            queue_seconds,
            run_seconds,
            faults,
            seed,
            balance,
            unlimited,
            latency,
        )
    )
