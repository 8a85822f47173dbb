"""The checks of local things: the config file and the settings it gives, the journal, the
output folder."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config
from ..errors import ExitCode, KlingError
from ..output import counted
from .checks import Check, ok, problem, warning

LOW_SPACE = 500 * 1024 * 1024  # bytes: a few pro 10 s videos


# --- the config file and the settings it gives -----------------------------------------------


@dataclass
class Settings:
    """What doctor found: the settings in effect (as far as they could be read) and the file."""

    values: dict[str, config.Setting]
    document: dict[str, Any]  # the file's plain contents ({} when absent or unreadable)


def check_config(
    path: Path, profile: str | None, flags: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[Check, Settings]:
    name = "config"
    findings: list[str] = []
    document: dict[str, Any] = {}
    unknown: list[str] = []  # what every command warns about the file's unknown keys
    file_values: dict[str, Any] = {}
    trouble: Check | None = None
    fix_hint = f"set the value again with `kling config set KEY VALUE`, or edit {path}"
    if not path.exists():
        findings.append(f"no config file at {path} (settings come from flags and environment)")
    else:
        try:
            document = config.read_plain(path)
            file_values = config.load_values(path, config.check_profile(profile), unknown.append)
        except KlingError as exc:
            trouble = problem(name, exc.message, exc.hint or fix_hint, exc.exit_code)
        else:
            mode = path.stat().st_mode & 0o777
            findings.append(f"{path} parses, mode {mode:04o}")
    try:
        values = config.resolve(flags, environ, file_values)
    except KlingError as exc:  # a bad KLING_* variable or value in the file
        values = _defaults_where_bad(flags, environ, file_values)
        trouble = trouble or problem(name, exc.message, exc.hint or fix_hint, exc.exit_code)
    settings = Settings(values, document)
    if trouble is not None:
        return trouble, settings
    if path.exists() and config.readable_by_others(path):
        holds_key = "api_key" in document or any(
            isinstance(t, dict) and "api_key" in t for t in _profiles(document).values()
        )
        text = f"{path} can be read by other users (mode {path.stat().st_mode & 0o777:04o})"
        hint = f"chmod 600 {path}"
        if holds_key:
            return problem(name, f"{text}, and it holds an API key", hint, ExitCode.USAGE), settings
        return warning(name, text, hint), settings
    if unknown:
        return warning(name, "; ".join(unknown), f"fix the name in {path}, or remove it"), settings
    if profile:
        findings.append(f"profile {profile}")
    return ok(name, ", ".join(findings)), settings


def _defaults_where_bad(
    flags: Mapping[str, Any], environ: Mapping[str, str], file_values: Mapping[str, Any]
) -> dict[str, config.Setting]:
    """Every key that resolves on its own; a key whose value does not validate gets its
    default, so the other checks can still run."""
    values = {}
    for key_name, key in config.KEYS.items():
        try:
            values[key_name] = config.resolve(
                {key_name: flags.get(key_name)},
                {key.env_var: environ[key.env_var]} if key.env_var in environ else {},
                {key_name: file_values[key_name]} if key_name in file_values else {},
            )[key_name]  # fmt: skip
        except KlingError:
            values[key_name] = config.Setting(key.default, "default")
    return {name: values[name] for name in config.KEYS}


def _profiles(document: Mapping[str, Any]) -> dict[str, Any]:
    profiles = document.get("profiles")
    return profiles if isinstance(profiles, dict) else {}


# --- the key ---------------------------------------------------------------------------------


def key_source(setting: config.Setting, profile: str | None, document: Mapping[str, Any]) -> str:
    if setting.source == "flag":
        return "--api-key"
    if setting.source == "env":
        return "KLING_API_KEY"
    table = _profiles(document).get(profile or "")
    if profile and isinstance(table, dict) and "api_key" in table:
        return f"profile {profile} of the config file"
    return "the config file"


# --- local files -----------------------------------------------------------------------------


def check_journal(path: Path) -> Check:
    """Opened read-only: doctor must not make or migrate a journal it only looks at."""
    from ..store.journal import Journal

    name = "journal"
    if not path.exists():
        return ok(name, f"no journal yet at {path}; the first task makes it")
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    move_aside = Journal(path)._move_aside()  # the same command its own errors give
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return problem(name, f"{path} cannot be opened ({exc})", "", ExitCode.USAGE)
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        return problem(
            name,
            f"{path} is damaged ({exc})",
            f"move it aside and kling starts a new one: {move_aside}",
            ExitCode.USAGE,
        )
    finally:
        conn.close()
    if verdict != ["ok"]:
        return problem(
            name,
            f"{path} is damaged (integrity check: {'; '.join(verdict[:3])})",
            f"move it aside and kling starts a new one: {move_aside}",
            ExitCode.USAGE,
        )
    return ok(name, f"{path}: {counted(tasks, 'task')}, {_size(size)}, integrity ok")


def check_output(folder: Path, source: str) -> Check:
    """The folder videos go to when no -o is given: it exists or can be made, it can be
    written (tried with a real file: permissions, ACLs and read-only disks all show), and how
    much room it has."""
    name = "output"
    where = f"{folder} ({source})"
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return problem(
            name,
            f"{where} cannot be made: {existing} is not a folder",
            "set another with `kling config set output_dir DIR`, or pass -o",
            ExitCode.USAGE,
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".kling-doctor-")
    except OSError as exc:
        verb = "cannot be written" if existing == folder else f"cannot be made in {existing}"
        return problem(
            name,
            f"{where} {verb} ({exc.strerror or exc})",
            "fix its permissions, or set another with `kling config set output_dir DIR` "
            "(or pass -o)",
            ExitCode.USAGE,
        )
    os.close(fd)
    os.unlink(probe)
    free = shutil.disk_usage(existing).free
    state = "exists, writable" if existing == folder else "will be made when needed"
    detail = f"{where}: {state}, {_size(free)} free"
    if free < LOW_SPACE:
        return warning(name, detail, "little room left for videos: free some space")
    return ok(name, detail)


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
