"""The API's address and who may be sent the key: a base URL read as the API's root, and the
origin (scheme, host, port) a URL names. The key goes only to the API's own origin, over
https or to this machine's loopback (api/http.py sends it)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..errors import UsageError


def api_root(base_url: str) -> str:
    """`https://host`, `https://host/`, `https://host/v1` and `.../v1/` all mean one root."""
    root = base_url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root + "/v1"


def same_service(base_url: str, other: str) -> bool:
    """Whether two base URLs reach one service (a journal row's, and this run's)."""
    return api_root(base_url) == api_root(other)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; ValueError for one that is not usable."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return scheme, host, parts.port or (443 if scheme == "https" else 80)  # .port: ValueError


def check_base_url(base_url: str) -> str:
    """The API root of a base URL the key may be sent to: https, or plain http to this very
    machine (loopback), which no proxy is ever asked to reach."""
    root = api_root(base_url)
    try:
        scheme, host, _ = origin(root)
    except ValueError:
        raise UsageError(f"base URL {base_url!r} is not an http(s) URL") from None
    if scheme == "http" and not is_loopback(host):
        raise UsageError(
            f"refusing to send the API key over plain http:// to {host}: anyone on the way "
            "(a proxy too) could read it",
            hint="use an https:// base URL (plain http is allowed only for loopback hosts, "
            "which kling reaches without any proxy)",
        )
    return root
