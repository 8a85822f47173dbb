"""urllib3's retry rules as kling uses them: which requests are retried (a generation POST only
where it cannot have been accepted), how long the tries left may take, and a hook that tells the
client of each retry (for its one notice on stderr)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from urllib3.util.retry import Retry

from .wire import RETRY_STATUSES

# Told of each retry about to happen: the host, what went wrong (a urllib3 error, or the answer
# when its status is retried), and the Retry that will run the remaining tries.
OnRetry = Callable[[str, "Exception | None", Any, Retry], None]


class NoticedRetry(Retry):
    """Retry that tells `on_retry` when a retry is about to happen (urllib3 retries inside
    urlopen, so this is where the client can learn of it). What is retried does not change."""

    on_retry: OnRetry | None = None
    pause: Callable[[float], None] = staticmethod(time.sleep)  # the Env's sleep: a test's is fake

    def new(self, **kw: Any) -> Any:
        retry = super().new(**kw)
        retry.on_retry = self.on_retry
        retry.pause = self.pause
        return retry

    def sleep(self, response: Any = None) -> None:
        """urllib3's wait before a retry (a Retry-After, else the backoff), on `pause`."""
        if self.respect_retry_after_header and response:
            retry_after = self.get_retry_after(response)
            if retry_after:
                self.pause(retry_after)
                return
        backoff = self.get_backoff_time()
        if backoff > 0:
            self.pause(backoff)

    def increment(  # type: ignore[override]  # urllib3's own signature, narrowed types
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.on_retry is not None:  # super() raised when no retry is left
            self.on_retry(_netloc(_pool), error, response, retry)
        return retry


def _netloc(pool: Any) -> str:
    host, port = getattr(pool, "host", None) or "the host", getattr(pool, "port", None)
    default = {"http": 80, "https": 443}.get(getattr(pool, "scheme", ""))
    return f"{host}:{port}" if port and port != default else str(host)


def retry_seconds(retry: Retry, first_wait: float | None = None, per_try: float = 0.0) -> float:
    """At most how long the remaining tries of `retry` take: urllib3's backoff before each
    (its formula, with the most jitter), or `first_wait` (a Retry-After) before the next one,
    plus `per_try` for each try that may wait out a timeout."""
    # After the n-th failure urllib3 sleeps (by n) and tries again, while `total` >= 0.
    tries = 1 + (retry.total if isinstance(retry.total, int) else 0)
    done = len(retry.history)
    total = 0.0
    for n in range(done, done + tries):
        if n == done and first_wait is not None:
            total += first_wait
        elif n > 1:
            backoff = retry.backoff_factor * 2 ** (n - 1) + retry.backoff_jitter
            total += min(retry.backoff_max, backoff)
    return total + tries * per_try


class SubmitRetry(NoticedRetry):
    """For a POST that must not arrive twice (the generation POST costs credits): retried only
    where it cannot have been accepted, a connection that never opened (urllib3's connect
    retries) or a 429 answer. GETs under the same URL prefix keep the ordinary rules."""

    def _is_method_retryable(self, method: str) -> bool:
        # Read errors on a POST are re-raised: the request may have been received.
        return method.upper() != "POST" and super()._is_method_retryable(method)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST":
            return status_code == 429 and bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)


def retry_rules(
    retries: int,
    backoff: float,
    cls: type[NoticedRetry] = NoticedRetry,
    on_retry: OnRetry | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> Retry:
    rules = cls(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        backoff_max=30,
        backoff_jitter=backoff,
        status_forcelist=RETRY_STATUSES,
        # POST elsewhere is the image upload: safe to resend. Submits have SubmitRetry.
        allowed_methods=frozenset({"GET", "HEAD", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    rules.on_retry = on_retry
    rules.pause = pause
    return rules
