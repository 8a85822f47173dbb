"""kling sandbox: run the local simulator of the service in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from ..env import SANDBOX_KEY, Env
from .common import env_of, number_option


def run_sandbox(
    env: Env,
    host: str,
    port: int,
    queue_seconds: float,
    run_seconds: float,
    faults: float,
    seed: int | None,
) -> int:
    from ..sandbox.server import SandboxConfig, run

    def ready(sandbox: object) -> None:
        base_url = sandbox.base_url  # type: ignore[attr-defined]
        print(base_url, file=env.stdout, flush=True)  # a script may read the port from stdout
        env.note(f"sandbox serving the API at {base_url} (Ctrl-C stops it)")
        env.note(f"try: export KLING_BASE_URL={base_url} KLING_API_KEY={SANDBOX_KEY}")
        env.note('     kling generate "a red fox in the snow" -o fox.mp4')

    cfg = SandboxConfig(
        queue_seconds=queue_seconds, run_seconds=run_seconds, faults=faults, seed=seed
    )
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
        number_option(
            "--queue-seconds",
            rich_help_panel="Tasks",
            metavar="SECONDS",
            help="Time a task stays queued.",
            min=0,
        ),
    ] = 2.0,
    run_seconds: Annotated[
        float,
        number_option(
            "--run-seconds",
            rich_help_panel="Tasks",
            metavar="SECONDS",
            help="Time a task runs.",
            min=0,
        ),
    ] = 6.0,
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
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", rich_help_panel="Faults", metavar="N", help="Seed for reproducible faults."
        ),
    ] = None,
) -> None:
    """Run a local simulator of the service: no key, no credits.

    Tasks go queued -> in_progress -> completed. Prompt markers rehearse trouble: [fail],
    [fail-text], [no-video], [expired], [slow], [url:top|video_url|result.url|videos|list].

    \b
    Examples:
      kling sandbox --port 8765 &
      KLING_BASE_URL=http://127.0.0.1:8765 KLING_API_KEY=x kling generate "[fail] a cat"
      kling sandbox --faults 0.2 --seed 1    # rehearse a flaky network
    """
    raise typer.Exit(run_sandbox(env_of(ctx), host, port, queue_seconds, run_seconds, faults, seed))
