"""Which requests are tried again, and how long kling waits between tries.

- READ (polls, the balance, videos, image uploads): after a connection that failed or timed
  out, and after 429 and 5xx answers;
- SUBMIT (the generation POST, which costs credits): only where it cannot have been accepted,
  a connection that never opened or a 429 answer;
- ONCE: one try, for a look that is only advice.
Between tries: the answer's Retry-After (seconds or an HTTP date; at most RETRY_AFTER_MAX),
else exponential backoff with jitter (api/http.py runs the loop).
"""

from __future__ import annotations

import email.utils
import random
import time
from enum import Enum

RETRIES = 5
BACKOFF = 0.5  # seconds before the first retry, doubling (0.5, 1, 2, 4, 8) plus jitter
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 60.0  # a Retry-After of a day is not a wait anyone asked for
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Retry(Enum):
    READ = "read"
    SUBMIT = "submit"
    ONCE = "once"


def backoff(base: float, tries: int) -> float:
    """The wait after the try numbered `tries` (from 0) failed: doubling, plus jitter."""
    return float(min(BACKOFF_MAX, base * 2.0**tries) + random.uniform(0, base))


def longest_wait(base: float, tries: int, retries: int, wait: float, per_try: float) -> float:
    """At most how long the tries left take: this wait, the backoffs of the tries after it
    (with the most jitter), and `per_try` (a timeout) for each try left."""
    later = sum(min(BACKOFF_MAX, base * 2.0**n) + base for n in range(tries + 1, retries))
    return wait + later + per_try * (retries - tries)


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, or as an HTTP date; at most RETRY_AFTER_MAX."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, RETRY_AFTER_MAX))
