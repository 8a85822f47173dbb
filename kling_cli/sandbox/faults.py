"""Fault injection: with probability `rate`, a request gets one of the enabled fault kinds.

Each kind rehearses a way the real network or gateway misbehaves, so the client's retry rules
can be tested against something that behaves like the real trouble:

- `rate_limit`: 429 with `Retry-After: 1`; the request had no effect.
- `server_error_json`: 500 or 503 with a JSON error body; the request had no effect.
- `bad_gateway_html`: 502 with an nginx-style HTML page; the request had no effect.
- `drop_before`: the connection closes before the request body is read; no effect.
- `drop_after`: the request is processed (a generation IS created), then the connection closes
  without an answer. A client must never resend such a generation POST; a GET by its
  `client_business_id` finds the task. (The `[lost]` prompt marker does the same every time.)
- `slow`: processed normally, answered after about 2 seconds.
- `truncated_body`: file downloads only: full `Content-Length`, about half the body, then close.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable

RATE_LIMIT = "rate_limit"
SERVER_ERROR_JSON = "server_error_json"
BAD_GATEWAY_HTML = "bad_gateway_html"
DROP_BEFORE = "drop_before"
DROP_AFTER = "drop_after"
SLOW = "slow"
TRUNCATED_BODY = "truncated_body"

ALL_KINDS: tuple[str, ...] = (
    RATE_LIMIT,
    SERVER_ERROR_JSON,
    BAD_GATEWAY_HTML,
    DROP_BEFORE,
    DROP_AFTER,
    SLOW,
    TRUNCATED_BODY,
)

# Kinds answered in place of the real answer: the request itself never takes effect.
REPLACING_KINDS: frozenset[str] = frozenset({RATE_LIMIT, SERVER_ERROR_JSON, BAD_GATEWAY_HTML})

SLOW_SECONDS = 2.0

BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    """The enabled kinds, in ALL_KINDS order; ValueError names any unknown kind."""
    if kinds is None:
        return ALL_KINDS
    wanted = [kinds] if isinstance(kinds, str) else list(kinds)  # a lone name is a common slip
    unknown = sorted(set(wanted) - set(ALL_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(ALL_KINDS)}")
    return tuple(k for k in ALL_KINDS if k in wanted)


class FaultInjector:
    """Draws faults from one seeded RNG; thread-safe, since handlers run on many threads."""

    def __init__(
        self, rate: float = 0.0, kinds: Iterable[str] | None = None, seed: int | None = None
    ) -> None:
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.rate = 0.0
        self.kinds: tuple[str, ...] = ALL_KINDS
        self.configure(rate, kinds)

    def configure(self, rate: float, kinds: Iterable[str] | None) -> None:
        """Change the rate and kinds (the RNG goes on); ValueError for bad values."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, not {rate}")
        checked = check_kinds(kinds)
        with self._lock:
            self.rate, self.kinds = rate, checked

    def pick(self, *, download: bool) -> str | None:
        """The fault for one request, or None. `download`: a file GET (which has a body to cut)."""
        with self._lock:
            if self.rate <= 0.0:
                return None
            eligible = [k for k in self.kinds if download or k != TRUNCATED_BODY]
            if self._rng.random() >= self.rate or not eligible:
                return None
            kind = self._rng.choice(eligible)
            self.injected[kind] += 1
            return kind

    def server_error_status(self) -> int:
        with self._lock:
            return self._rng.choice((500, 503))

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.injected)
