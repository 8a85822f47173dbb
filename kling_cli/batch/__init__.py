"""Batch generation from a JSON Lines file: its lines (`lines`: reading and checking them),
one run of them at a time (`lock`), the run on the engine (`runner`) and the files beside the
videos (`sidecar`). `kling batch` is
kling_cli.commands.batch; this package is imported only when a batch runs."""

from __future__ import annotations

from .lines import Index, Line, Shard, Source
from .lock import one_run_at_a_time
from .runner import Options, Runner, Tally

__all__ = [
    "Index",
    "Line",
    "Options",
    "Runner",
    "Shard",
    "Source",
    "Tally",
    "one_run_at_a_time",
]
