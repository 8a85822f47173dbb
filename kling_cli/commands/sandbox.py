"""kling sandbox: run the local simulator of the service in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from ..env import SANDBOX_KEY, Env
from ..errors import UsageError
from .common import env_of


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
) -> int:
    from ..sandbox.server import SandboxConfig, run

    def ready(sandbox: object) -> None:
        base_url = sandbox.base_url  # type: ignore[attr-defined]
        print(base_url, file=env.stdout, flush=True)  # a script may read the port from stdout
        env.note(f"sandbox serving the API at {base_url} (Ctrl-C stops it)")
        env.note(f"try: export KLING_BASE_URL={base_url} KLING_API_KEY={SANDBOX_KEY}")
        env.note('     kling generate "a red fox in the snow" -o fox.mp4')

    account = {} if balance is None else {"balance": balance}  # else the sandbox's default
    try:
        cfg = SandboxConfig(
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            faults=faults,
            seed=seed,
            unlimited=unlimited,
            **account,
        )
    except ValueError as exc:  # e.g. --balance nan
        raise UsageError(str(exc)) from None
    run(host, port, cfg, on_ready=ready)
    return 0


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
        typer.Option(
            "--queue-seconds",
            rich_help_panel="Tasks",
            metavar="SECONDS",
            help="Time a task stays queued.",
            min=0,
        ),
    ] = 2.0,
    run_seconds: Annotated[
        float,
        typer.Option(
            "--run-seconds",
            rich_help_panel="Tasks",
            metavar="SECONDS",
            help="Time a task runs.",
            min=0,
        ),
    ] = 6.0,
    faults: Annotated[
        float,
        typer.Option(
            "--faults",
            rich_help_panel="Faults",
            metavar="RATE",
            help="Share of answers (0-1) replaced by a fault.",
            min=0,
            max=1,
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
    [url:top|video_url|result.url|videos|list], and [status:WORD] for the other status
    spellings: completed ones (succeed, succeeded, success) end completed, failed ones
    (cancelled, canceled, expired, error) end failed, pending ones (submitted, processing,
    pending, running) or an unknown word are shown while the task runs.

    \b
    Examples:
      kling sandbox --port 8765 &
      KLING_BASE_URL=http://127.0.0.1:8765 KLING_API_KEY=x kling generate "[fail] a cat"
      kling sandbox --faults 0.2 --seed 1    # rehearse a flaky network
    """
    raise typer.Exit(
        run_sandbox(
            env_of(ctx), host, port, queue_seconds, run_seconds, faults, seed, balance, unlimited
        )
    )
