"""HTTP transport for the client: one requests.Session, urllib3's retry rules, a pooled GET for
polls, streamed answers for videos, and --verbose's urllib3 trace.

Nothing here knows the service's endpoints or its error bodies (that is client.py). A request
that gets no complete answer raises NetworkError, the one failure type callers catch: neither
client.py nor download.py needs to know requests' or urllib3's exceptions.

Imported only when a command sends something: `kling --help` must not pay for requests.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.filepost import encode_multipart_formdata
from urllib3.response import BaseHTTPResponse, HTTPResponse
from urllib3.util import Timeout
from urllib3.util.retry import Retry

from .retries import SubmitRetry, retry_rules, retry_seconds
from .wire import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Answer,
    Failed,
    Heard,
    NetworkError,
    Trace,
)

# What a failed request can raise: requests' exceptions, or urllib3's on the pooled GET path.
_FAILURES = (requests.RequestException, HTTPError, OSError)


def _network_error(url: str, exc: BaseException) -> NetworkError:
    cause = _cause(exc)
    return NetworkError(
        urlsplit(url).netloc,
        _describe(cause),
        surely_not_sent=isinstance(cause, (NewConnectionError, ConnectTimeoutError)),
    )


def _cause(exc: BaseException) -> BaseException:
    """The low-level error behind a requests or urllib3 exception."""
    if isinstance(exc, requests.RequestException) and exc.args:
        inner = exc.args[0]
        exc = inner if isinstance(inner, BaseException) else exc
    if isinstance(exc, MaxRetryError) and exc.reason is not None:  # retries ran out: why
        exc = exc.reason
    return exc


def _describe(cause: BaseException) -> str:
    # requests' ConnectTimeout, ReadTimeout and SSLError wrap these urllib3 causes.
    if isinstance(cause, NewConnectionError):  # a subclass of ConnectTimeoutError
        return Failed.REFUSED.value
    if isinstance(cause, ConnectTimeoutError):
        return Failed.CONNECT_TIMEOUT.value
    if isinstance(cause, ReadTimeoutError):
        return Failed.READ_TIMEOUT.value
    if isinstance(cause, Urllib3SSLError):
        return Failed.TLS.value
    if "CA certificate bundle" in str(cause):  # requests' words for a REQUESTS_CA_BUNDLE not there
        return f"{Failed.TLS.value} ({cause})"
    return Failed.BROKEN.value


def _urllib3_error(failed: Failed, pool: HTTPConnectionPool, url: str) -> Exception:
    """The urllib3 error that means what a try on direct.py's path met."""
    if failed is Failed.REFUSED:
        return NewConnectionError(pool, failed.value)  # type: ignore[arg-type]  # a pool for its connection: only read for its name
    if failed is Failed.CONNECT_TIMEOUT:
        return ConnectTimeoutError(failed.value)
    if failed is Failed.READ_TIMEOUT:
        return ReadTimeoutError(pool, url, failed.value)
    if failed is Failed.TLS:
        return Urllib3SSLError(failed.value)
    return ProtocolError(failed.value)


# --- the session -------------------------------------------------------------------------------


class _TraceHandler(logging.Handler):
    """urllib3's own log lines (connections, retries) into --verbose's trace. urllib3 logs
    methods, URLs and statuses, never headers, so the key cannot show."""

    def __init__(self, trace: Trace):
        super().__init__(logging.DEBUG)
        self._trace = trace

    def emit(self, record: logging.LogRecord) -> None:
        self._trace(f"urllib3: {record.getMessage()}")


class _NoNetrc:
    """Session-wide auth that does nothing, so requests never reads ~/.netrc: a netrc entry
    would replace our bearer key, and reading it costs time on every request."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _Session(requests.Session):
    """A Session that asks the environment about proxies once per origin, not per request
    (HTTPS_PROXY, HTTP_PROXY and NO_PROXY are still honoured: they are read on first use)."""

    def __init__(self) -> None:
        super().__init__()
        self.auth = _NoNetrc()
        self._environment: dict[tuple[Any, ...], Mapping[str, Any]] = {}

    def merge_environment_settings(  # type: ignore[override]  # str URLs only; stubs' _Settings is private
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Mapping[str, Any]:
        parts = urlsplit(url)
        key = (
            parts.scheme,
            parts.netloc,
            tuple(sorted((proxies or {}).items())),
            stream,
            verify,
            cert,
        )
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        return self._environment[key]


# --- what comes back ---------------------------------------------------------------------------


class ProgressReader(io.BytesIO):
    """An in-memory body that reports bytes as they are sent; seekable, so retries can rewind."""

    def __init__(self, data: bytes, on_bytes: Callable[[int], None] | None):
        super().__init__(data)
        self._on_bytes = on_bytes

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if self._on_bytes and chunk:
            self._on_bytes(len(chunk))
        return chunk


def _answer(resp: requests.Response) -> Answer:
    content_type = resp.headers.get("Content-Type", "")
    return Answer(resp.status_code, resp.reason or "", content_type, resp.content)


class Stream:
    """A streamed answer (a video), read in chunks: a broken read raises NetworkError.
    Fits download.Response."""

    def __init__(self, url: str, resp: requests.Response):
        self.url = url
        self._resp = resp
        self.status_code = resp.status_code
        self.reason = resp.reason or ""

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        try:
            yield from self._resp.iter_content(chunk_size)
        except _FAILURES as exc:
            raise _network_error(self.url, exc) from None

    def close(self) -> None:
        self._resp.close()


# --- the transport -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    """What requests works out for a GET to one origin with one set of headers."""

    pool: HTTPConnectionPool
    adapter: HTTPAdapter
    full_url: bool
    origin_length: int
    headers: dict[str, str]
    retries: Retry


class Transport:
    """One Session with a connection pool per host (`pool_size`: the requests a command keeps
    in flight), retrying by retry_rules; POSTs under `submit_prefix` by SubmitRetry."""

    def __init__(
        self,
        *,
        user_agent: str,
        submit_prefix: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        pool_size: int = 10,
        trace: Trace | None = None,
        notice: Trace | None = None,
        sleep: Callable[[float], None] = time.sleep,  # between retries: a test's is fake
    ):
        self.timeout = timeout
        # The first retry of a run is told once (`notice`): without it an unreachable host
        # meant 16 s of silence. --verbose's trace shows every retry.
        self.notice = notice
        self._retry_noticed = False
        self._notice_lock = threading.Lock()
        on_retry = self._on_retry if notice else None
        self._pool_timeout = Timeout(connect=timeout[0], read=timeout[1])
        self._log_handler: logging.Handler | None = None
        if trace:
            self._log_handler = _TraceHandler(trace)
            urllib3_log = logging.getLogger("urllib3")
            urllib3_log.setLevel(logging.DEBUG)
            urllib3_log.addHandler(self._log_handler)
        self._routes: dict[tuple[str, tuple[tuple[str, str], ...]], _Route] = {}
        self.session = _Session()
        self.session.headers["User-Agent"] = user_agent
        for prefix, rules in (
            ("http://", retry_rules(retries, backoff, on_retry=on_retry, pause=sleep)),
            ("https://", retry_rules(retries, backoff, on_retry=on_retry, pause=sleep)),
            (submit_prefix, retry_rules(retries, backoff, SubmitRetry, on_retry, sleep)),
        ):
            self.session.mount(prefix, HTTPAdapter(max_retries=rules, pool_maxsize=pool_size))

    def get(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        retry: bool = True,
        tried: Failed | Heard | None = None,
    ) -> Answer:
        """A GET read whole; `retry=False`: one try. `tried`: a first try made elsewhere
        (direct.py), how it failed or the answer of a retried status; it counts as one of the
        tries, told and waited for as such."""
        try:
            return self._pooled_get(url, headers, retry, tried)
        except _FAILURES as exc:
            raise _network_error(url, exc) from None

    def post(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        json: Any = None,
        form: Mapping[str, Any] | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> Answer:
        """A POST of `json`, or of `form` as multipart/form-data (a field's value may be a
        (file name, bytes, MIME type) tuple), built in memory so that a retry can send it
        again; `on_bytes` is told of the bytes as they are sent."""
        kw: dict[str, Any] = {"json": json}
        if form is not None:
            body, content_type = encode_multipart_formdata(dict(form))
            headers = {**headers, "Content-Type": content_type}
            kw = {"data": ProgressReader(body, on_bytes)}
        try:
            resp = self.session.post(url, headers=dict(headers), timeout=self.timeout, **kw)
            return _answer(resp)
        except _FAILURES as exc:
            raise _network_error(url, exc) from None

    def stream(self, url: str, headers: Mapping[str, str] | None = None) -> Stream:
        """A streamed GET, with only the session's headers and `headers`."""
        try:
            resp = self.session.get(url, stream=True, timeout=self.timeout, headers=headers)
        except _FAILURES as exc:
            raise _network_error(url, exc) from None
        return Stream(url, resp)

    def _pooled_get(
        self, url: str, headers: Mapping[str, str], retry: bool, tried: Failed | Heard | None
    ) -> Answer:
        """A GET through the urllib3 pool that requests keeps for this host: the same
        connection, TLS settings, proxy and retry rules as every other request, without the
        work a Session does per request (preparing it, cookies, hooks, redirects), which
        none of our GETs use and which is half the CPU of a poll: `wait` on hundreds of
        tasks polls thousands of times. The calls are requests' own HTTPAdapter.send's, made
        once per origin and set of headers (`_route`)."""
        route = self._route(url, headers)
        retries = route.retries if retry else Retry(0, read=False, redirect=False)
        got: BaseHTTPResponse | None = None
        if isinstance(tried, Failed):  # as urlopen does after a failed try: count it, wait
            error = _urllib3_error(tried, route.pool, url)
            retries = retries.increment("GET", url, error=error, _pool=route.pool)
            retries.sleep()
        elif isinstance(tried, Heard):  # decided here as if urlopen had heard it
            got = HTTPResponse(
                body=io.BytesIO(tried.body),
                headers=tried.headers,
                status=tried.status,
                reason=tried.reason,
                preload_content=False,
            )
            if retries.is_retry("GET", got.status, "Retry-After" in got.headers):
                with contextlib.suppress(MaxRetryError):  # none left: this answer stands
                    retries = retries.increment("GET", url, response=got, _pool=route.pool)
                    retries.sleep(got)
                    got = None
        if got is None:
            got = route.pool.urlopen(
                "GET",
                url if route.full_url else url[route.origin_length :] or "/",
                headers=route.headers,
                redirect=False,
                assert_same_host=False,
                preload_content=True,  # read inside urlopen, so a broken body is retried too
                decode_content=True,
                retries=retries,
                timeout=self._pool_timeout,
            )
        if got.get_redirect_location():  # rare: the Session follows it, keeping the key at home
            session = self.session
            settings = session.merge_environment_settings(url, {}, None, None, None)
            prepared = session.prepare_request(requests.Request("GET", url, headers=headers))
            first = route.adapter.build_response(prepared, got)
            *_, resp = session.resolve_redirects(first, prepared, timeout=self.timeout, **settings)
            return _answer(resp)
        return Answer(got.status, got.reason or "", got.headers.get("Content-Type", ""), got.data)

    def _route(self, url: str, headers: Mapping[str, str]) -> _Route:
        """Where a GET of `url` goes: what requests would work out for it, kept per origin
        (the proxy settings are per origin too) and headers, while its pool is open."""
        start = url.find("//") + 2
        slash = url.find("/", start)
        origin = url if slash < 0 else url[:slash]
        key = (origin, tuple(headers.items()))
        route = self._routes.get(key)
        if route is not None and route.pool.pool is not None:  # None: closed, or evicted
            return route
        session = self.session
        request = requests.PreparedRequest()
        request.method, request.url = "GET", url
        request.headers = requests.structures.CaseInsensitiveDict(session.headers)  # type: ignore[arg-type]  # ours are all str
        request.headers.update(headers)
        settings = session.merge_environment_settings(url, {}, None, None, None)
        verify, proxies, cert = settings["verify"], settings["proxies"], settings["cert"]
        adapter = session.get_adapter(url)
        assert isinstance(adapter, HTTPAdapter)  # mounted in __init__
        pool = adapter.get_connection_with_tls_context(request, verify, proxies, cert)
        assert isinstance(pool, HTTPConnectionPool)  # what every requests pool is
        adapter.cert_verify(pool, url, verify, cert)  # type: ignore[no-untyped-call]  # untyped in types-requests
        route = _Route(
            pool=pool,
            adapter=adapter,
            # Through a plain-http proxy the request line carries the whole URL.
            full_url=adapter.request_url(request, proxies) != request.path_url,
            origin_length=len(origin),
            headers=dict(request.headers.items()),
            retries=adapter.max_retries,
        )
        self._routes[key] = route
        return route

    def _on_retry(self, host: str, error: Exception | None, response: Any, retry: Retry) -> None:
        with self._notice_lock:
            if self._retry_noticed or self.notice is None:
                return
            self._retry_noticed = True
        per_try = 0.0
        if isinstance(error, NewConnectionError):  # refused or unreachable: fails at once
            pass
        elif isinstance(error, ConnectTimeoutError):
            per_try = self.timeout[0]
        elif isinstance(error, ReadTimeoutError):
            per_try = self.timeout[1]
        first_wait = None
        if error is None and response is not None:
            what = f"{host} answered {response.status} {response.reason or ''}".rstrip()
            if retry.respect_retry_after_header:
                with contextlib.suppress(ValueError):  # an unreadable Retry-After: backoff
                    first_wait = retry.get_retry_after(response)
        else:
            what = f"could not reach {host} ({_describe(error or HTTPError())})"
        seconds = retry_seconds(retry, first_wait, per_try)
        self.notice(f"{what}; retrying for up to ~{max(1, round(seconds))} s")

    def close(self) -> None:
        for route in self._routes.values():  # clearing requests' pool managers leaves them open
            route.pool.close()
        self._routes.clear()
        self.session.close()
        if self._log_handler is not None:
            logging.getLogger("urllib3").removeHandler(self._log_handler)
