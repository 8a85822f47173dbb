"""Where kling keeps its files, and the journal's file name: stdlib only and nothing else, so
that a TAB (`kling __complete-ids`, kling_cli.main) can find the journal without loading the
config. kling_cli.config and kling_cli.store.journal re-export these names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

JOURNAL_FILE = "journal.sqlite3"


def home_override(environ: Mapping[str, str] | None = None) -> Path | None:
    home = (os.environ if environ is None else environ).get("KLING_HOME")
    return Path(home).expanduser() if home else None


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    override = home_override(environ)
    if override:
        return override
    from platformdirs import user_config_path

    return user_config_path("kling", appauthor=False)


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """KLING_HOME, else the per-user data folder. `environ`: the run's environment."""
    override = home_override(environ)
    if override:
        return override
    from platformdirs import user_data_path

    return user_data_path("kling", appauthor=False)
