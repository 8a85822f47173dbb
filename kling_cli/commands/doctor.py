"""kling doctor: check the setup, one line per check, with what to do about each problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import doctor, paths
from ..env import SANDBOX_KEY, Env
from ..output import Format, Output, choose, counted
from .common import env_of, json_option


def run_doctor(env: Env, fmt: Format) -> int:
    config_check, settings = doctor.check_config(
        env.config_path, env.profile, env.flags, env.environ
    )
    values = settings.values
    if env.use_sandbox:
        base_url, key, source = env.sandbox.base_url, SANDBOX_KEY, "the sandbox (a throwaway)"
    else:
        base_url = str(values["base_url"].value)
        key = values["api_key"].value
        source = doctor.key_source(values["api_key"], env.profile, settings.document)
    proxies = doctor.check_proxies(base_url, env.environ)
    reach = doctor.check_base_url(base_url, sandbox=env.use_sandbox)
    key_check = doctor.check_key(
        key, source, _balance(env, base_url, key) if reach.reachable else None
    )
    output_dir = values["output_dir"].value
    output = doctor.check_output(
        Path(output_dir) if output_dir else Path.cwd(),
        f"output_dir, from {values['output_dir'].source}" if output_dir else "the current folder",
    )
    journal = doctor.check_journal(paths.data_dir(env.environ) / "journal.sqlite3")
    checks = [config_check, key_check, reach.check, proxies, journal, output]
    _show(env, fmt, checks)
    return int(doctor.exit_code(checks))


def _balance(env: Env, base_url: str, key: str | None) -> Callable[[], Mapping[str, Any]] | None:
    if not key:
        return None
    from ..api.client import Client

    def ask() -> Mapping[str, Any]:
        trace = env.ui.trace if env.ui.verbose else None
        client = Client(base_url, key, trace=trace, timeout=doctor.PROBE_TIMEOUT)
        try:
            return client.get_balance(retry=False)
        finally:
            client.close()

    return ask


def _show(env: Env, fmt: Format, checks: list[doctor.Check]) -> None:
    out = Output(env.ui, fmt)
    problems = sum(c.status is doctor.Status.PROBLEM for c in checks)
    if fmt is Format.JSON:
        out.json({"checks": [c.as_json() for c in checks], "ok": problems == 0})
        return
    width = max(len(c.name) for c in checks)
    for check in checks:
        if env.ui.stdout_tty:
            out.value(f"{check.status.value:<8} {check.name:<{width}}  {check.detail}")
            if check.hint:
                out.value(f"{'':<8} {'':<{width}}  -> {check.hint}")
        else:  # stable for scripts: STATUS, NAME, DETAIL, HINT
            out.row(check.status.value, check.name, check.detail, check.hint)
    warnings = sum(c.status is doctor.Status.WARNING for c in checks)
    env.ui.note(f"{counted(problems, 'problem')}, {counted(warnings, 'warning')}")


def command(
    ctx: typer.Context,
    json: Annotated[bool, json_option("Every check in one JSON document on stdout.")] = False,
) -> None:
    """Check the setup: config file, key, service, proxies, journal and output folder.

    Each check prints ok, warning or problem, what it saw and what to do. Exit 0 when nothing
    is a problem (warnings are fine); else the code of the first problem: 3 the key, 5 the
    service cannot be reached, 2 a local file or setting to fix. The key is shown masked.

    \b
    Examples:
      kling doctor
      kling --sandbox doctor
      kling doctor --json | jq -r '.checks[] | select(.status != "ok") | .hint'
    """
    env = env_of(ctx)
    raise typer.Exit(run_doctor(env, choose(json, False)))
