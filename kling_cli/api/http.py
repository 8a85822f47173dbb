"""Every HTTP request kling makes, on one path: one requests.Session, one retry loop in plain
sight (which requests, and how long between tries: api/retry.py), redirects followed by
kling's own rules, the hosts the key may go to, --verbose's trace of that same path, and every
failure of a request turned into one error of kling's. Nothing waits or reads past the
caller's `deadline` (`--timeout`): the time left bounds each read and is checked between reads.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import requests.utils
from requests.adapters import HTTPAdapter
from urllib3.filepost import encode_multipart_formdata

from .. import __version__
from ..errors import RequestFailed
from .failures import failure, out_of_time
from .retry import BACKOFF, RETRIES, RETRY_STATUSES, Retry, backoff, longest_wait, retry_after
from .urls import check_base_url, is_loopback, origin

TIMEOUT = (10.0, 60.0)  # (connect, read) seconds: an upload of 10 MB may take a while to answer
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
# Failures another try would meet again: not retried (RequestFailed.reason).
AGAIN_THE_SAME = frozenset({"tls", "redirect"})
ANSWER_LIMIT = 16 * 1024 * 1024  # an API answer is a few KB: more is not one
READ_SIZE = 64 * 1024
# Connections kept per host: the poll threads and the sends and downloads beside them.
POOL_SIZE = 100

Trace = Callable[[str], None]
_Heard = TypeVar("_Heard", "Answer", "Stream")  # what a try hears: read whole, or streamed


@dataclass(frozen=True)
class Answer:
    """An answer read whole (the API's are small JSON documents)."""

    url: str
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def close(self) -> None:
        """Nothing to release: the body was read whole."""


class Http:
    """HTTP for one command run. The API key goes only to the API's own origin (scheme, host
    and port of `api`): never to the video host, never across a redirect to another origin."""

    def __init__(
        self,
        api: str,
        key: str | None,
        *,
        trace: Trace | None = None,
        notice: Trace | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: tuple[float, float] = TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
    ):
        self.api = check_base_url(api)
        self._api_origin = origin(self.api)
        self._key = key
        self.trace = trace
        self.notice = notice
        self._noticed = threading.Event()  # the first retry of a run is told once
        self.sleep = sleep
        self.clock = clock
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        # Session-wide auth that does nothing, so requests never reads ~/.netrc: a netrc entry
        # would replace the bearer key.
        self.session.auth = lambda request: request
        self.session.headers["User-Agent"] = f"kling-cli/{__version__}"
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # --- requests --------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        url: str,
        *,
        retry: Retry = Retry.READ,
        json: Any = None,
        form: Mapping[str, Any] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """A request whose answer is read whole: the last answer heard (a retried status
        when the tries ran out), or RequestFailed. `form`: multipart fields, a file as
        (name, bytes, MIME type); `on_bytes` is told of its bytes as they go."""
        headers = {"Accept": "application/json"}
        body = None
        if form is not None:
            body, headers["Content-Type"] = encode_multipart_formdata(dict(form))

        def one_try() -> Answer:
            data = None if body is None else _Counting(body, on_bytes)
            hop, resp = self._follow(method, url, headers, json, data, deadline, key=True)
            try:
                body_read = self._read(resp, hop, deadline)
            finally:
                resp.close()
            return Answer(hop, resp.status_code, resp.reason or "", resp.headers, body_read)

        return self._tries(url, retry, deadline, one_try)

    def stream(self, url: str, headers: Mapping[str, str], deadline: float | None = None) -> Stream:
        """A GET whose body is read as it comes (a video), never with the key, whatever the
        host (the API's own included). Getting its answer is retried as any GET is; a body
        that breaks after that is the caller's to resume."""

        def one_try() -> Stream:
            hop, resp = self._follow("GET", url, headers, None, None, deadline, key=False)
            return Stream(self, hop, resp, deadline)

        return self._tries(url, Retry.READ, deadline, one_try)

    def _tries(
        self, url: str, retry: Retry, deadline: float | None, one_try: Callable[[], _Heard]
    ) -> _Heard:
        """The retry loop: a failed try, or an answer with a retried status, is tried again
        after a wait (Retry-After's when given) while tries and time are left."""
        for tries in range(self.retries + 1):
            last = tries >= self.retries or retry is Retry.ONCE
            try:
                heard = one_try()
            except RequestFailed as exc:
                may_retry = not exc.sent or retry is Retry.READ
                if last or not may_retry or exc.out_of_time or exc.reason in AGAIN_THE_SAME:
                    raise
                wait, per_try = backoff(self.backoff, tries), exc.per_try
                why = f"could not reach {exc.host} ({exc.description})"
            else:
                retried = heard.status in RETRY_STATUSES and (
                    retry is Retry.READ or heard.status == 429
                )
                if last or not retried:
                    return heard
                heard.close()
                asked = retry_after(heard.headers.get("Retry-After"))
                wait = backoff(self.backoff, tries) if asked is None else asked
                per_try = 0.0
                host = urlsplit(heard.url).netloc
                why = f"{host} answered {heard.status} {heard.reason}".rstrip()
            if deadline is not None and self.clock() + wait >= deadline:
                wait = max(0.0, deadline - self.clock())
                if wait <= 0:  # the try before was not accepted, or it would not be retried
                    raise out_of_time(url, sent=False)
            self._tell_retry(why, tries, wait, per_try, deadline)
            if wait > 0:
                self.sleep(wait)
        raise AssertionError("unreachable: the last try returns or raises")

    # --- one try, and the redirects it meets --------------------------------------------------

    def _follow(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: Any,
        data: _Counting | None,
        deadline: float | None,
        *,
        key: bool,
    ) -> tuple[str, requests.Response]:
        """One try, following redirects by our rules: a GET anywhere (the key only to the
        API's origin); a POST only with 307 or 308 on the same origin (a paid request is never
        posted to another host); anything else that redirects is an unusable answer. Returns
        the address that answered, and its answer with the body still to read."""
        sent = method != "GET"
        for _hop in range(MAX_REDIRECTS + 1):
            resp = self._send(method, url, headers, json, data, deadline, key=key)
            location = resp.headers.get("Location")
            if resp.status_code not in REDIRECTS or location is None:
                return url, resp
            resp.close()
            target = self._redirect_target(url, location, sent)
            if sent and (resp.status_code not in (307, 308) or origin(target) != origin(url)):
                raise RequestFailed(
                    urlsplit(url).netloc,
                    f"it answered {resp.status_code} with a redirect to {target}; a {method} "
                    "is never sent on to another address",
                    sent=True,
                )
            self._trace(f"  redirected ({resp.status_code}) to {target}")
            url = target
            if data is not None:
                data.seek(0)
        raise RequestFailed(
            urlsplit(url).netloc, "too many redirects", sent=sent, reason="redirect"
        )

    def _redirect_target(self, url: str, location: str, sent: bool) -> str:
        try:
            if not location.isascii() or not location.isprintable():
                raise ValueError("not a plain address")
            target = urljoin(url, location.strip())
            origin(target)  # an http(s) URL with a usable host and port
        except ValueError:
            raise RequestFailed(
                urlsplit(url).netloc,
                f"it answered a redirect to an unusable address ({location!r:.100})",
                sent=sent,
                reason="redirect",
            ) from None
        return target

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: Any,
        data: _Counting | None,
        deadline: float | None,
        *,
        key: bool,
    ) -> requests.Response:
        """One request, its answer's headers read; the key only to the API's own origin (and
        never with a video, whatever its host)."""
        headers = dict(headers)
        to_api = key and _origin_or_none(url) == self._api_origin
        if to_api and self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        connect, read = self.timeout
        if deadline is not None:
            left = deadline - self.clock()
            if left <= 0:
                raise out_of_time(url, sent=False)
            connect, read = min(connect, left), min(read, left)
        self._trace(f"> {method} {url}" + (" (Authorization: Bearer <redacted>)" if to_api else ""))
        started = time.monotonic()
        try:
            resp = self.session.request(
                method,
                url,
                headers=headers,
                json=json,
                data=data,
                timeout=(connect, read),
                allow_redirects=False,
                stream=True,
                proxies=_no_proxy_for(url),
            )
        except Exception as exc:  # whatever the libraries raise, the request failed: say how
            raise failure(url, exc, self.timeout, self._past(deadline)) from None
        self._trace(f"< {resp.status_code} {resp.reason or ''} ({time.monotonic() - started:.2f}s)")
        return resp

    def _read(self, resp: requests.Response, url: str, deadline: float | None) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in self._chunks(resp, url, deadline):
            size += len(chunk)
            if size > ANSWER_LIMIT:
                raise RequestFailed(
                    urlsplit(url).netloc, "an answer larger than any the API gives", sent=True
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _chunks(
        self, resp: requests.Response, url: str, deadline: float | None, size: int = READ_SIZE
    ) -> Iterator[bytes]:
        """The body as it comes, each read bounded by the time left: a server that sends a
        byte a second is stopped at the deadline, not when it is done."""
        while True:
            if self._past(deadline):
                raise out_of_time(url, sent=True)
            try:
                chunk = resp.raw.read1(size, decode_content=True)
            except Exception as exc:  # a broken or garbled body: the request failed
                raise failure(url, exc, self.timeout, self._past(deadline)) from None
            if not chunk:
                return
            yield chunk

    # --- retries ----------------------------------------------------------------------------------

    def _tell_retry(
        self, why: str, tries: int, wait: float, per_try: float, deadline: float | None
    ) -> None:
        self._trace(f"  retry {tries + 1} of {self.retries} in {wait:.1f}s: {why}")
        if self.notice is None or self._noticed.is_set():
            return
        self._noticed.set()
        seconds = longest_wait(self.backoff, tries, self.retries, wait, per_try)
        if deadline is not None:
            seconds = min(seconds, max(0.0, deadline - self.clock()))
        self.notice(f"{why}; retrying for up to ~{max(1, round(seconds))} s")

    def _past(self, deadline: float | None) -> bool:
        return deadline is not None and self.clock() >= deadline

    def _trace(self, line: str) -> None:
        if self.trace is not None:
            self.trace(line)

    def close(self) -> None:
        self.session.close()


class Stream:
    """A streamed answer (a video): `iter_content` yields its bytes as they come, bounded by
    the deadline; a read that breaks raises RequestFailed."""

    def __init__(self, http: Http, url: str, resp: requests.Response, deadline: float | None):
        self._http = http
        self.url = url
        self._resp = resp
        self._deadline = deadline
        self.status = resp.status_code
        self.reason = resp.reason or ""
        self.headers: Mapping[str, str] = resp.headers

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The body as it comes, in pieces of at most `chunk_size` bytes (taken as they are
        read, not copied into pieces of one size)."""
        return self._http._chunks(self._resp, self.url, self._deadline, chunk_size)

    def close(self) -> None:
        self._resp.close()


class _Counting(io.BytesIO):
    """A body read from memory that reports its bytes as they are sent."""

    def __init__(self, data: bytes, on_bytes: Callable[[int], None] | None):
        super().__init__(data)
        self._on_bytes = on_bytes

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if self._on_bytes is not None and chunk:
            self._on_bytes(len(chunk))
        return chunk


def _origin_or_none(url: str) -> tuple[str, str, int] | None:
    try:
        return origin(url)
    except ValueError:
        return None


def _no_proxy_for(url: str) -> dict[str, str] | None:
    """A loopback host is reached directly, whatever the proxy variables say (as NO_PROXY
    would have it): a proxy cannot reach this machine's loopback, and the key sent there over
    plain http must not leave the machine."""
    host = urlsplit(url).hostname or ""
    return {"no_proxy": host} if is_loopback(host) else None


def proxies_for(url: str) -> dict[str, str]:
    """The proxies a request to `url` goes through: the environment's (HTTPS_PROXY, HTTP_PROXY,
    ALL_PROXY, NO_PROXY, as requests reads them), none for a loopback host."""
    if _no_proxy_for(url) is not None:
        return {}
    return dict(requests.utils.get_environ_proxies(url))
