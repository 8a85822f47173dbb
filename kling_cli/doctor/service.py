"""The checks of the service: the key (asked once), the proxies on the way, the base URL
(DNS, TLS, reachability, time to answer)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import config
from ..api.urls import is_loopback
from ..errors import APIError, AuthError, ExitCode, ServiceUnavailable
from ..output import counted
from .checks import Check, ok, problem, warning

SLOW_ANSWER = 3.0  # seconds: slower than this, every poll and download will drag
PROBE_TIMEOUT = (5.0, 10.0)  # (connect, read): doctor should answer quickly, not retry


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
    from ..api.balance import Balance

    quota = Balance.of(answer)
    detail = f"{shown}, accepted by the service (remaining {quota.remaining_text})"
    if quota.exhausted:
        return warning(name, detail, "the balance is spent: new tasks may be refused")
    return ok(name, detail)


# --- the service: its address, the proxies on the way ---------------------------------------


def proxies_for(url: str) -> dict[str, str]:
    """The proxies a request to `url` goes through (api/http.py's rule)."""
    from ..api.http import proxies_for

    return proxies_for(url)


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
        host = urlsplit(base_url).hostname or ""
        where = "directly" if not seen else "directly (NO_PROXY or no proxy for this scheme)"
        if seen and is_loopback(host):
            where = "directly (a loopback host never goes through a proxy)"
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
    API on the HTTP path every request takes (its proxies, TLS, CA bundle): any HTTP answer
    means the service can be reached; the time it took is reported."""
    from ..api.http import Http
    from ..api.retry import Retry
    from ..errors import RequestFailed, UsageError

    name = "base_url"
    label = f"{base_url} (the built-in sandbox)" if sandbox else base_url
    try:
        http = Http(base_url, None, timeout=PROBE_TIMEOUT, retries=0)
    except UsageError as exc:
        fix = "use an https:// base URL: kling config set base_url https://..."
        return Reach(problem(name, f"{label}: {exc.message}", fix, ExitCode.USAGE), False)
    parts = urlsplit(http.api)
    host = parts.hostname or ""
    steps: list[str] = []
    if not proxies_for(base_url) and not _is_address(host):
        started = time.monotonic()
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 443)}
        except (socket.gaierror, UnicodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            return Reach(
                problem(
                    name,
                    f"{label}: the name {host} does not resolve ({why})",
                    "check the spelling of base_url (`kling config get base_url`) and the DNS "
                    "of this machine",
                    ExitCode.UNAVAILABLE,
                ),
                False,
            )
        count = counted(len(addresses), "address", "addresses")
        steps.append(f"DNS {_ms(time.monotonic() - started)} ({count})")
    started = time.monotonic()
    try:  # no key: this only asks whether something answers
        answer = http.call("GET", http.api + "/balance", retry=Retry.ONCE)
    except RequestFailed as exc:
        if exc.reason == "tls":
            what = f"TLS failed ({exc.description})"
            fix = "a proxy that inspects TLS needs its CA: set REQUESTS_CA_BUNDLE to its file"
        elif exc.reason == "timeout":
            what = f"no answer within {PROBE_TIMEOUT[1]:.0f} s"
            fix = "check the network, a firewall or the proxy settings"
        else:
            what = f"cannot connect ({exc.description})"
            fix = (
                "check base_url (`kling config get base_url`), the network and the proxy "
                "settings; for the sandbox, is `kling sandbox` running?"
            )
        return Reach(problem(name, f"{label}: {what}", fix, ExitCode.UNAVAILABLE), False)
    finally:
        http.close()
    took = time.monotonic() - started
    if parts.scheme == "https":
        steps.append("TLS ok")
    steps.append(f"answered HTTP {answer.status} in {_ms(took)}")
    detail = f"{label}: {', '.join(steps)}"
    if answer.status >= 500:
        return Reach(warning(name, detail, "the service is having trouble: try again later"), True)
    if took > SLOW_ANSWER:
        return Reach(warning(name, f"{detail} (slow)", "a slow network or proxy"), True)
    return Reach(ok(name, detail), True)


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
