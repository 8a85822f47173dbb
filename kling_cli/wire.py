"""What both of kling's HTTP paths share, without importing requests: an Answer read whole,
NetworkError for a request that got none, the timeouts, and which answers are retried.

The paths: transport.py (requests and urllib3: every request, with retries, proxies, redirects
and --verbose's trace) and direct.py (the API's GETs straight over keep-alive sockets, the cheap
path for polls, handing anything unusual to transport.py). A command that only polls never
imports requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .errors import ServiceUnavailable

# (connect, read) seconds. Reads are generous: an upload of 10 MB may take a while to answer.
DEFAULT_TIMEOUT = (10.0, 60.0)

DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.5  # seconds: 5 retries sleep 0, 1, 2, 4, 8 s (plus jitter)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Trace = Callable[[str], None]


class NetworkError(ServiceUnavailable):
    """A request that got no complete answer: refused, timed out, cut off, TLS. Callers map it
    to their own words; it is a ServiceUnavailable (exit 5) so that one that is not mapped
    still reads as what it is."""

    def __init__(self, host: str, description: str, *, surely_not_sent: bool):
        super().__init__(f"could not reach {host}: {description}")
        self.host = host
        self.description = description
        # True when the connection never opened, so the request cannot have reached the host.
        self.surely_not_sent = surely_not_sent


@dataclass(frozen=True)
class Answer:
    """An answer read whole (the API's are small JSON documents)."""

    status: int
    reason: str
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Heard:
    """An answer heard on direct.py's path that transport.py's rules decide on: a status it
    retries, a redirect, a compressed body."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


class Failed(Enum):
    """How a try on direct.py's path got no complete answer: transport.py counts it as the
    first of its tries, with the error of its own that means the same."""

    REFUSED = "connection refused or host unreachable"
    CONNECT_TIMEOUT = "connection timed out"
    READ_TIMEOUT = "no answer in time (read timeout)"
    TLS = "TLS error"
    BROKEN = "connection broken"
