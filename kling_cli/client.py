"""A thin client for the three endpoints of the service (API.md), over one requests.Session.

No terminal code here: callers get dicts back or a typed exception from errors.py.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import logging
import mimetypes
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.filepost import encode_multipart_formdata
from urllib3.util import Timeout
from urllib3.util.retry import Retry

from . import __version__
from .errors import (
    APIError,
    AuthError,
    LocalFileError,
    MissingKeyError,
    ServiceUnavailable,
    SubmitUncertain,
    UsageError,
)
from .tasks import TaskView

# (connect, read) seconds. Reads are generous: an upload of 10 MB may take a while to answer.
DEFAULT_TIMEOUT = (10.0, 60.0)
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.5  # seconds: 5 retries sleep 0, 1, 2, 4, 8 s (plus jitter)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SUBMIT_PATH = "/videos/generations"
UNCERTAIN_HINT = (
    "`kling list` shows the request as `uncertain`; look for the task on the provider's "
    "dashboard before submitting again"
)

Trace = Callable[[str], None]
# Told of each retry about to happen: the host, what went wrong (a urllib3 error, or the answer
# when its status is retried), and the Retry that will run the remaining tries.
OnRetry = Callable[[str, "Exception | None", Any, Retry], None]


def api_root(base_url: str) -> str:
    """`https://host`, `https://host/`, `https://host/v1` and `.../v1/` all mean one root."""
    root = base_url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root + "/v1"


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _NoticedRetry(Retry):
    """Retry that tells `on_retry` when a retry is about to happen (urllib3 retries inside
    urlopen, so this is where the client can learn of it). What is retried does not change."""

    on_retry: OnRetry | None = None

    def new(self, **kw: Any) -> Any:
        retry = super().new(**kw)
        retry.on_retry = self.on_retry
        return retry

    def increment(  # type: ignore[override]
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


def _retry_seconds(retry: Retry, first_wait: float | None = None, per_try: float = 0.0) -> float:
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


class _SubmitRetry(_NoticedRetry):
    """The generation POST costs credits, so it is retried only where it cannot have been
    accepted: a connection that never opened (urllib3's connect retries) or a 429 answer.
    GETs of tasks share this adapter's URL prefix and keep the ordinary rules."""

    def _is_method_retryable(self, method: str) -> bool:
        # Read errors on a POST are re-raised: the request may have been received.
        return method.upper() != "POST" and super()._is_method_retryable(method)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST":
            return status_code == 429 and bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)


def _retry_rules(
    retries: int,
    backoff: float,
    cls: type[_NoticedRetry] = _NoticedRetry,
    on_retry: OnRetry | None = None,
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
        # POST here is the image upload: safe to resend. The generation POST has its own rules.
        allowed_methods=frozenset({"GET", "HEAD", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    rules.on_retry = on_retry
    return rules


def error_message(body: bytes | str, content_type: str = "", reason: str = "") -> tuple[str, Any]:
    """The service's own words from an error body of any shape seen (API.md), and its code."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg") or err.get("type")
            if msg:
                return _one_line(str(msg)), err.get("code")
        elif isinstance(err, str) and err.strip():
            return _one_line(err), data.get("code")
        for field in ("message", "msg", "detail"):
            if isinstance(data.get(field), str) and data[field].strip():
                return _one_line(data[field]), data.get("code")
    if "html" in content_type.lower() or text[:200].lower().lstrip().startswith(
        ("<!doctype", "<html")
    ):
        title = _html_title(text)
        return (
            f"{title} (an HTML page, probably from a proxy)" if title else "an HTML error page"
        ), None
    if text:
        return _one_line(text), None
    return reason or "no message", None


def _html_title(text: str) -> str:
    lower = text.lower()
    start = lower.find("<title>")
    end = lower.find("</title>", start)
    if start == -1 or end == -1:
        return ""
    return _one_line(text[start + len("<title>") : end])


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# What a failed request can raise: requests' exceptions, or urllib3's on the pooled GET path.
NETWORK_ERRORS = (requests.RequestException, HTTPError, OSError)


def _cause(exc: BaseException) -> BaseException:
    """The low-level error behind a requests or urllib3 exception."""
    if isinstance(exc, requests.RequestException) and exc.args:
        inner = exc.args[0]
        exc = inner if isinstance(inner, BaseException) else exc
    if isinstance(exc, MaxRetryError) and exc.reason is not None:  # retries ran out: why
        exc = exc.reason
    return exc


def _surely_not_sent(exc: BaseException) -> bool:
    """True when the connection never opened, so the request cannot have reached the service."""
    return isinstance(_cause(exc), (NewConnectionError, ConnectTimeoutError))


def _describe(exc: BaseException) -> str:
    # requests' ConnectTimeout, ReadTimeout and SSLError wrap these urllib3 causes.
    cause = _cause(exc)
    if isinstance(cause, NewConnectionError):  # a subclass of ConnectTimeoutError
        return "connection refused or host unreachable"
    if isinstance(cause, ConnectTimeoutError):
        return "connection timed out"
    if isinstance(cause, ReadTimeoutError):
        return "no answer in time (read timeout)"
    if isinstance(cause, Urllib3SSLError):
        return "TLS error"
    return "connection broken"


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


@dataclass(frozen=True)
class Answer:
    """An answer of the API, read whole (its answers are small JSON documents)."""

    status: int
    reason: str
    content_type: str
    body: bytes

    @classmethod
    def of(cls, resp: requests.Response) -> Answer:
        content_type = resp.headers.get("Content-Type", "")
        return cls(resp.status_code, resp.reason or "", content_type, resp.content)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float | None = None,
        trace: Trace | None = None,
        notice: Trace | None = None,
        session: requests.Session | None = None,
        pool_size: int = 10,
    ):
        self.api = api_root(base_url)
        self.api_key = api_key
        parts = urlsplit(self.api)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"base URL {base_url!r} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise UsageError(
                f"refusing to send the API key over plain http:// to {parts.hostname}",
                hint="use an https:// base URL (plain http is allowed only for loopback hosts)",
            )
        self.timeout = timeout
        self._pool_timeout = Timeout(connect=timeout[0], read=timeout[1])
        self.trace = trace
        # The first retry of a run is told once (`notice`): without it an unreachable host
        # meant 16 s of silence. --verbose's trace shows every retry.
        self.notice = notice
        self._retry_noticed = False
        self._notice_lock = threading.Lock()
        self._log_handler: logging.Handler | None = None
        if trace:
            self._log_handler = _TraceHandler(trace)
            urllib3_log = logging.getLogger("urllib3")
            urllib3_log.setLevel(logging.DEBUG)
            urllib3_log.addHandler(self._log_handler)
        self.session = session or _Session()
        self.session.headers["User-Agent"] = f"kling-cli/{__version__}"
        backoff = DEFAULT_BACKOFF if backoff is None else backoff
        on_retry = self._on_retry if notice else None
        # One pool per host, as large as the number of requests a command keeps in flight.
        for prefix, rules in (
            ("http://", _retry_rules(retries, backoff, on_retry=on_retry)),
            ("https://", _retry_rules(retries, backoff, on_retry=on_retry)),
            (self.api + SUBMIT_PATH, _retry_rules(retries, backoff, _SubmitRetry, on_retry)),
        ):
            self.session.mount(prefix, HTTPAdapter(max_retries=rules, pool_maxsize=pool_size))

    # --- the three endpoints -----------------------------------------------------------------

    def create_task(self, body: Mapping[str, Any]) -> TaskView:
        resp = self._api("POST", SUBMIT_PATH, json=dict(body), submit=True)
        try:
            task = TaskView.of(self._json_object(resp))
        except ServiceUnavailable as exc:  # answered 2xx: it may well have made the task
            raise SubmitUncertain(exc.message, hint=UNCERTAIN_HINT) from None
        if not task.id:
            raise SubmitUncertain(
                "the service accepted the request but returned no task id: "
                + _one_line(resp.text, 200),
                hint=UNCERTAIN_HINT,
            )
        return task

    def get_task(self, task_id: str) -> TaskView:
        if task_id.strip(".") == "":  # "", "." and ".." would name another path
            raise UsageError(f"{task_id!r} is not a task id")
        resp = self._api("GET", f"{SUBMIT_PATH}/{quote(task_id, safe='')}", task_id=task_id)
        return TaskView.of(self._json_object(resp, task_id=task_id))

    def get_balance(self, *, retry: bool = True) -> dict[str, Any]:
        """The key's quota (API.md section 4). A key the service does not know comes back as
        200 with `success: false`: that is an authentication problem (exit 3). `retry=False`:
        one try, for a look that is only advice (batch's check before sending)."""
        answer = self._json_object(self._api("GET", "/balance", retry=retry))
        if answer.get("success") is False:
            message = answer.get("message") or "the service does not know this API key"
            raise AuthError(
                f"the service does not know this API key: {_one_line(str(message))}",
                hint="check the key with `kling config get api_key` or KLING_API_KEY",
            )
        return answer

    def upload_image(
        self,
        path: Path,
        purpose: str = "generation",
        on_bytes: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise LocalFileError(f"cannot read {path}: {exc.strerror}") from None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # Built in memory (images are at most 10 MB) so that a retry can send it again.
        body, content_type = encode_multipart_formdata(
            {"purpose": purpose, "file": (path.name, content, mime)}
        )
        resp = self._api(
            "POST",
            "/uploads/images",
            data=ProgressReader(body, on_bytes),
            headers={"Content-Type": content_type},
        )
        answer = self._json_object(resp)
        data = answer.get("data")
        if answer.get("success") is False or not isinstance(data, dict) or not data.get("url"):
            message = answer.get("message") or "the upload returned no URL"
            raise APIError(resp.status, _one_line(str(message)))
        return data

    # --- the video host --------------------------------------------------------------------

    def open_video(self, url: str, headers: Mapping[str, str] | None = None) -> requests.Response:
        """A streamed GET of a video. Never carries the API key: the video host is not the API."""
        self._trace(f"> GET {url}")
        try:
            resp = self.session.get(url, stream=True, timeout=self.timeout, headers=headers)
        except NETWORK_ERRORS as exc:
            raise ServiceUnavailable(f"could not download {url}: {_describe(exc)}") from None
        self._trace(f"< {resp.status_code} {resp.reason}")
        return resp

    # --- plumbing ----------------------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        *,
        submit: bool = False,
        task_id: str | None = None,
        retry: bool = True,
        **kw: Any,
    ) -> Answer:
        if not self.api_key:
            raise MissingKeyError("no API key")
        url = self.api + path
        headers = {"Accept": "application/json", **kw.pop("headers", {})}
        headers["Authorization"] = f"Bearer {self.api_key}"
        if self.trace:
            self.trace(f"> {method} {url} (Authorization: Bearer <redacted>)")
        started = time.monotonic()
        try:
            if method == "GET" and not kw:
                answer = self._pooled_get(url, headers, retry)
            else:
                timeout = self.timeout
                resp = self.session.request(method, url, headers=headers, timeout=timeout, **kw)
                answer = Answer.of(resp)
        except NETWORK_ERRORS as exc:
            host = urlsplit(url).netloc
            if submit and not _surely_not_sent(exc):
                raise SubmitUncertain(
                    f"the generation request may have reached {host} ({_describe(exc)}); "
                    "it was not sent again, so no second task was made",
                    hint=UNCERTAIN_HINT,
                ) from None
            raise ServiceUnavailable(f"could not reach {host}: {_describe(exc)}") from None
        if self.trace:
            self.trace(
                f"< {answer.status} {answer.reason} ({len(answer.body)} bytes, "
                f"{time.monotonic() - started:.2f}s)"
            )
        if answer.status >= 400:
            message, code = error_message(answer.body, answer.content_type, answer.reason)
            if submit and answer.status >= 500:  # a gateway may fail after passing it on
                raise SubmitUncertain(
                    f"the service answered {answer.status}: {message}; the generation "
                    "request may still have made a task, so it was not sent again",
                    hint=UNCERTAIN_HINT,
                )
            raise APIError(answer.status, message, code=code, task_id=task_id)
        return answer

    def _pooled_get(self, url: str, headers: Mapping[str, str], retry: bool = True) -> Answer:
        """A GET through the urllib3 pool that requests keeps for this host: the same
        connection, TLS settings, proxy and retry rules as every other request, without the
        work a Session does per request (preparing it, cookies, hooks, redirects), which
        none of our GETs use and which is half the CPU of a poll: `wait` on hundreds of
        tasks polls thousands of times. The calls are requests' own HTTPAdapter.send's."""
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
        got = pool.urlopen(
            "GET",
            adapter.request_url(request, proxies),
            headers=request.headers,
            redirect=False,
            assert_same_host=False,
            preload_content=True,  # read inside urlopen, so a broken body is retried too
            decode_content=True,
            retries=adapter.max_retries if retry else Retry(0, read=False, redirect=False),
            timeout=self._pool_timeout,
        )
        if got.get_redirect_location():  # rare: the Session follows it, keeping the key at home
            prepared = session.prepare_request(requests.Request("GET", url, headers=headers))
            first = adapter.build_response(prepared, got)
            *_, resp = session.resolve_redirects(first, prepared, timeout=self.timeout, **settings)  # type: ignore[arg-type]  # stubs say verify: bool; a CA path works too
            return Answer.of(resp)
        return Answer(got.status, got.reason or "", got.headers.get("Content-Type", ""), got.data)

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
        seconds = _retry_seconds(retry, first_wait, per_try)
        self.notice(f"{what}; retrying for up to ~{max(1, round(seconds))} s")

    def _json_object(self, answer: Answer, task_id: str | None = None) -> dict[str, Any]:
        try:
            data = json.loads(answer.body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise ServiceUnavailable(
                f"the service answered something unreadable (HTTP {answer.status}): "
                + _one_line(answer.text or "an empty body", 200),
                task_id=task_id,
            )
        return data

    def _trace(self, line: str) -> None:
        if self.trace:
            self.trace(line)

    def close(self) -> None:
        self.session.close()
        if self._log_handler is not None:
            logging.getLogger("urllib3").removeHandler(self._log_handler)
