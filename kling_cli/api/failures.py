"""What went wrong with a request, in kling's words: whatever requests or urllib3 raised,
turned into one RequestFailed that says whether the request may have reached the host
(`sent`), whether the caller's deadline ran out, and whether another try could help."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import SSLError as TLSError

from ..errors import RequestFailed


def out_of_time(url: str, *, sent: bool) -> RequestFailed:
    message = "no answer before the time given (--timeout)"
    return RequestFailed(urlsplit(url).netloc, message, sent=sent, out_of_time=True)


def failure(
    url: str, exc: BaseException, timeout: tuple[float, float], past_deadline: bool
) -> RequestFailed:
    """What went wrong with a request, in words, and whether it may have reached the host.
    `timeout`: (connect, read) seconds; `past_deadline`: the caller's --timeout has run out."""
    host = urlsplit(url).netloc
    timed_out = isinstance(exc, (requests.Timeout, ReadTimeoutError))
    if past_deadline and timed_out:
        return out_of_time(url, sent=not isinstance(exc, requests.ConnectTimeout))
    cause = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else None
    reason = getattr(cause, "reason", cause)
    if isinstance(exc, (requests.exceptions.SSLError, TLSError)) or (
        "CA certificate bundle" in str(exc)  # requests' words for a REQUESTS_CA_BUNDLE not there
    ):
        return RequestFailed(host, f"TLS error ({_short(exc)})", sent=False, reason="tls")
    if isinstance(exc, requests.ConnectTimeout):
        message = "connection timed out"
        return RequestFailed(host, message, sent=False, reason="timeout", per_try=timeout[0])
    if isinstance(exc, requests.exceptions.ProxyError):
        return RequestFailed(host, f"the proxy failed ({_short(exc)})", sent=False)
    if isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError):
        return RequestFailed(host, "connection refused or host unreachable", sent=False)
    if timed_out:
        message = "no answer in time (read timeout)"
        return RequestFailed(host, message, sent=True, reason="timeout", per_try=timeout[1])
    broken = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, ProtocolError)
    if isinstance(exc, broken):
        return RequestFailed(host, "connection broken", sent=True)
    # Anything else a library raised on what came back: an answer that is not HTTP we can use
    # (a length too large for any integer, a negative chunk size, undecodable bytes).
    message = f"an unreadable answer ({type(exc).__name__}: {_short(exc)})"
    return RequestFailed(host, message, sent=True)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."
