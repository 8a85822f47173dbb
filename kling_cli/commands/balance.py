"""kling balance: the remaining and used quota of the API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from ..api.balance import Balance
from ..env import Env
from ..output import Format, Output, choose
from .common import QuietOpt, env_of, json_option


@dataclass
class BalanceOptions:
    format: Format


def run_balance(env: Env, opts: BalanceOptions) -> int:
    answer = env.client.get_balance()
    out = Output(env.ui, opts.format)
    balance = Balance.of(answer)
    if opts.format is Format.JSON:
        out.json(answer)  # as it came
    elif opts.format is Format.QUIET:
        out.value(balance.remaining_text)
    else:  # REMAINING<TAB>USED, on a terminal too (CLI.md); there, a note says which is which
        if env.ui.stdout_tty:
            env.ui.note("remaining and used, in the unit the account is set up with:")
        out.row(balance.remaining_text, balance.used_text)
    return 0


def command(
    ctx: typer.Context,
    json: Annotated[
        bool, json_option("The service's answer, as it came, as JSON on stdout.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Show the remaining and used quota of the API key.

    Prints `REMAINING<TAB>USED` when piped, each amount on a line of its own with its name on
    a terminal (`unlimited` when the key has no limit), in the unit the account is set up with
    (USD, CNY or tokens: the service does not say which).

    \b
    Examples:
      kling balance
      kling balance -q             # the remaining amount alone
      kling balance --json | jq .used_balance
    """
    env = env_of(ctx)
    raise typer.Exit(run_balance(env, BalanceOptions(choose(json, quiet))))
