"""A thin client for the endpoints of the service (API.md), and its errors: answers and
network failures become the typed exceptions of errors.py. The HTTP itself is transport.py's,
and direct.py's for the API's GETs (polls) where it may: transport, and requests with it, is
then made only when a request needs it.

No terminal code here: callers get dicts back or a typed exception from errors.py.
"""

from __future__ import annotations

import ipaddress
import json
import mimetypes
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from . import __version__
from .direct import Direct, Handover, ca_bundle, usable
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

if TYPE_CHECKING:
    from .transport import Stream, Transport

SUBMIT_PATH = "/videos/generations"
UNCERTAIN_HINT = (
    "`kling list` shows the request as `uncertain`; look for the task on the provider's "
    "dashboard before submitting again"
)


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


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float | None = None,  # None: DEFAULT_BACKOFF (read when called: tests lower it)
        trace: Trace | None = None,
        notice: Trace | None = None,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,  # between retries: the Env's
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
        self.trace = trace
        user_agent = f"kling-cli/{__version__}"
        self._api_path = parts.path
        # No direct GETs with a trace: --verbose shows urllib3's own lines for every request.
        self._direct = (
            Direct(f"{parts.scheme}://{parts.netloc}", user_agent, timeout, ca_bundle(os.environ))
            if trace is None and usable(self.api, os.environ)
            else None
        )
        self._transport: Transport | None = None
        self._transport_lock = threading.Lock()
        self._transport_settings: dict[str, Any] = dict(
            user_agent=user_agent,
            # The generation POST costs credits: it is never resent once it may have arrived.
            submit_prefix=self.api + SUBMIT_PATH,
            timeout=timeout,
            retries=retries,
            backoff=DEFAULT_BACKOFF if backoff is None else backoff,
            pool_size=pool_size,
            trace=trace,
            notice=notice,
            sleep=sleep,
        )

    @property
    def transport(self) -> Transport:
        """requests' Session and urllib3's pools, made on first use: a command that only polls
        never imports them."""
        with self._transport_lock:
            if self._transport is None:
                from .transport import Transport

                self._transport = Transport(**self._transport_settings)
            return self._transport

    # --- the endpoints -----------------------------------------------------------------------

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
        # Images are at most 10 MB: the transport builds the body in memory, to resend it.
        form = {"purpose": purpose, "file": (path.name, content, mime)}
        resp = self._api("POST", "/uploads/images", form=form, on_bytes=on_bytes)
        answer = self._json_object(resp)
        data = answer.get("data")
        if answer.get("success") is False or not isinstance(data, dict) or not data.get("url"):
            message = answer.get("message") or "the upload returned no URL"
            raise APIError(resp.status, _one_line(str(message)))
        return data

    # --- the video host --------------------------------------------------------------------

    def open_video(self, url: str, headers: Mapping[str, str] | None = None) -> Stream:
        """A streamed GET of a video. Never carries the API key: the video host is not the API."""
        self._trace(f"> GET {url}")
        try:
            resp = self.transport.stream(url, headers)
        except NetworkError as exc:
            raise ServiceUnavailable(f"could not download {url}: {exc.description}") from None
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
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.api_key}"}
        if self.trace:
            self.trace(f"> {method} {url} (Authorization: Bearer <redacted>)")
        started = time.monotonic()
        try:
            if method == "GET":
                answer = self._get(path, url, headers, retry)
            else:
                answer = self.transport.post(url, headers, **kw)
        except NetworkError as exc:
            if submit and not exc.surely_not_sent:
                raise SubmitUncertain(
                    f"the generation request may have reached {exc.host} ({exc.description}); "
                    "it was not sent again, so no second task was made",
                    hint=UNCERTAIN_HINT,
                ) from None
            raise ServiceUnavailable(f"could not reach {exc.host}: {exc.description}") from None
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

    def _get(self, path: str, url: str, headers: Mapping[str, str], retry: bool) -> Answer:
        tried: Failed | Heard | None = None
        if self._direct is not None:
            try:
                return self._direct.get(self._api_path + path, headers)
            except Handover as handover:
                tried = handover.tried
        return self.transport.get(url, headers, retry=retry, tried=tried)

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
        if self._direct is not None:
            self._direct.close()
        if self._transport is not None:
            self._transport.close()
