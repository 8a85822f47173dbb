"""kling doctor's checks: each looks at one thing a run depends on and says ok, warning or
problem, what it saw, and what to do. They only look: nothing is written (the journal is opened
read-only, the output folder is probed with a temporary file that is removed at once)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import config
from .errors import APIError, AuthError, ExitCode, KlingError, ServiceUnavailable
from .output import counted

SLOW_ANSWER = 3.0  # seconds: slower than this, every poll and download will drag
LOW_SPACE = 500 * 1024 * 1024  # bytes: a few pro 10 s videos
PROBE_TIMEOUT = (5.0, 10.0)  # (connect, read): doctor should answer quickly, not retry


class Status(str, Enum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""
    # The CLI.md exit code a problem stands for (3 the key, 5 the service, 2 a local file).
    exit_code: ExitCode = ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["status"] = self.status.value
        del doc["exit_code"]
        return doc


def ok(name: str, detail: str, hint: str = "") -> Check:
    return Check(name, Status.OK, detail, hint)


def warning(name: str, detail: str, hint: str = "") -> Check:
    return Check(name, Status.WARNING, detail, hint)


def problem(name: str, detail: str, hint: str, code: ExitCode) -> Check:
    return Check(name, Status.PROBLEM, detail, hint, code)


def exit_code(checks: list[Check]) -> ExitCode:
    """0 when nothing is a problem (warnings are fine), else the code of the first problem in
    the order shown, as with several tasks (CLI.md)."""
    return next((c.exit_code for c in checks if c.status is Status.PROBLEM), ExitCode.OK)


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
            values.update(config.resolve(
                {key_name: flags.get(key_name)},
                {key.env_var: environ[key.env_var]} if key.env_var in environ else {},
                {key_name: file_values[key_name]} if key_name in file_values else {},
            ))  # fmt: skip
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


NO_KEY_HINT = (
    "set one with `kling config set api_key` (it asks for it), KLING_API_KEY or --api-key; "
    "or try the sandbox: kling --sandbox ..."
)


def check_key(
    key: str | None,
    source: str,
    balance: Callable[[], Mapping[str, Any]] | None,
) -> Check:
    """`balance` asks the service about the key once; None when the service could not be
    reached (the base URL check says why)."""
    name = "key"
    if not key:
        return problem(name, "no API key", NO_KEY_HINT, ExitCode.AUTH)
    shown = f"{config.mask(key)} from {source}"
    if balance is None:
        return warning(name, f"{shown}; not checked: the service could not be reached")
    try:
        answer = balance()
    except AuthError as exc:
        return problem(name, f"{shown}: {exc.message}", exc.hint or NO_KEY_HINT, ExitCode.AUTH)
    except APIError as exc:
        if exc.status in (401, 403):
            return problem(
                name,
                f"{shown}: refused by the service (HTTP {exc.status}: {exc.service_message})",
                "the key may be revoked or mistyped: create a new one on the ToAPIs API key "
                "page and store it with `kling config set api_key`",
                ExitCode.AUTH,
            )
        if exc.status == 402:
            return problem(
                name,
                f"{shown}: the account cannot pay (HTTP 402: {exc.service_message})",
                "top up the account on the ToAPIs dashboard",
                ExitCode.AUTH,
            )
        if exc.status == 404:
            return warning(
                name,
                f"{shown}; not checked: this service has no /v1/balance (HTTP 404)",
                "a gateway without the balance endpoint: the first request will tell",
            )
        return warning(name, f"{shown}; not checked: {exc.message}")
    except ServiceUnavailable as exc:
        return warning(name, f"{shown}; not checked: {exc.message}")
    from .balance import Balance

    quota = Balance.of(answer)
    detail = f"{shown}, accepted by the service (remaining {quota.remaining_text})"
    if quota.exhausted:
        return warning(name, detail, "the balance is spent: new tasks may be refused")
    return ok(name, detail)


# --- the service: its address, the proxies on the way ---------------------------------------


def proxies_for(url: str) -> dict[str, str]:
    """The proxies requests would use for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY,
    in either case), as the client's Session asks for them."""
    import requests.utils

    return dict(requests.utils.get_environ_proxies(url))


def hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def check_proxies(base_url: str, environ: Mapping[str, str]) -> Check:
    name = "proxies"
    seen = [
        variable for variable in PROXY_VARIABLES
        if environ.get(variable) or environ.get(variable.lower())
    ]  # fmt: skip
    scheme = urlsplit(base_url).scheme
    proxy = proxies_for(base_url).get(scheme) or proxies_for(base_url).get("all")
    set_text = f"set: {', '.join(seen)}" if seen else "no proxy variables set"
    if not proxy:
        where = "directly" if not seen else "directly (NO_PROXY or no proxy for this scheme)"
        return ok(name, f"{base_url} is reached {where}; {set_text}")
    shown = hide_password(proxy)
    proxy_scheme = urlsplit(proxy if "://" in proxy else f"http://{proxy}").scheme
    if proxy_scheme.startswith("socks"):
        import importlib.util

        if importlib.util.find_spec("socks") is None:  # PySocks: requests' optional extra
            return problem(
                name,
                f"{base_url} goes through {shown}, a SOCKS proxy, but PySocks is not installed",
                "pip install 'requests[socks]' where kling is installed, or use an HTTP proxy",
                ExitCode.UNAVAILABLE,
            )
    return ok(name, f"{base_url} goes through proxy {shown}; {set_text}")


@dataclass
class Reach:
    check: Check
    reachable: bool


def check_base_url(base_url: str, *, sandbox: bool = False) -> Reach:
    """Resolve the host (when no proxy stands in between), then one unauthenticated GET of the
    API through the same proxies and TLS settings as every request: any HTTP answer means the
    service can be reached; the time it took is reported."""
    import requests

    from .client import api_root, is_loopback

    name = "base_url"
    parts = urlsplit(api_root(base_url))
    host = parts.hostname or ""
    label = f"{base_url} (the built-in sandbox)" if sandbox else base_url
    if parts.scheme == "http" and not is_loopback(host):
        return Reach(
            problem(
                name,
                f"{label}: plain http:// to {host}; kling refuses to send the key there",
                "use an https:// base URL: kling config set base_url https://...",
                ExitCode.USAGE,
            ),
            False,
        )
    steps: list[str] = []
    proxied = bool(proxies_for(base_url))
    if not proxied and not _is_address(host):
        started = time.monotonic()
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 443)}
        except (socket.gaierror, UnicodeError) as exc:
            return Reach(
                problem(
                    name,
                    f"{label}: the name {host} does not resolve ({_reason(exc)})",
                    "check the spelling of base_url (`kling config get base_url`) and the DNS "
                    "of this machine",
                    ExitCode.UNAVAILABLE,
                ),
                False,
            )
        count = counted(len(addresses), "address", "addresses")
        steps.append(f"DNS {_ms(time.monotonic() - started)} ({count})")
    url = parts.geturl() + "/balance"
    started = time.monotonic()
    try:
        # No key: this only asks whether something answers. auth: never one from ~/.netrc.
        resp = requests.get(url, timeout=PROBE_TIMEOUT, allow_redirects=False, auth=_no_auth)
    except requests.exceptions.SSLError as exc:
        return Reach(
            problem(
                name,
                f"{label}: TLS failed ({_reason(exc)})",
                "a proxy that inspects TLS needs its CA: set REQUESTS_CA_BUNDLE to its "
                "certificate file",
                ExitCode.UNAVAILABLE,
            ),
            False,
        )
    except requests.exceptions.Timeout:
        return Reach(
            problem(
                name,
                f"{label}: no answer within {PROBE_TIMEOUT[1]:.0f} s",
                "check the network, a firewall or the proxy settings",
                ExitCode.UNAVAILABLE,
            ),
            False,
        )
    except (requests.RequestException, OSError) as exc:
        return Reach(
            problem(
                name,
                f"{label}: cannot connect ({_reason(exc)})",
                "check base_url (`kling config get base_url`), the network and the proxy "
                "settings; for the sandbox, is `kling sandbox` running?",
                ExitCode.UNAVAILABLE,
            ),
            False,
        )
    took = time.monotonic() - started
    if parts.scheme == "https":
        steps.append("TLS ok")
    steps.append(f"answered HTTP {resp.status_code} in {_ms(took)}")
    detail = f"{label}: {', '.join(steps)}"
    if resp.status_code >= 500:
        return Reach(warning(name, detail, "the service is having trouble: try again later"), True)
    if took > SLOW_ANSWER:
        return Reach(warning(name, f"{detail} (slow)", "a slow network or proxy"), True)
    return Reach(ok(name, detail), True)


def _no_auth(request: Any) -> Any:
    return request


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _reason(exc: BaseException) -> str:
    """The innermost reason, in one short line ("Connection refused", not the whole chain)."""
    seen = exc
    while True:
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        inner = inner or getattr(seen, "reason", None)
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    text = str(seen)
    if "Errno" in text or "] " in text:
        text = text.rsplit("] ", 1)[-1]
    text = text.rsplit("): ", 1)[-1]
    return " ".join(text.split())[:200] or type(seen).__name__


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --- local files -----------------------------------------------------------------------------


def check_journal(path: Path) -> Check:
    """Opened read-only: doctor must not make or migrate a journal it only looks at."""
    from .journal import Journal

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
