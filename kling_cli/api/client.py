"""The service's endpoints (API.md) and its error documents: answers become task views and
dicts, failures the typed errors of errors.py. The HTTP is api/http.py's.

No terminal code here: callers get values back or a typed exception.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import (
    APIError,
    AuthError,
    KlingError,
    LocalFileError,
    MissingKeyError,
    RequestFailed,
    ServiceUnavailable,
    SubmitUncertain,
    UsageError,
)
from ..text import one_line
from .http import Answer, Http, Stream
from .retry import Retry
from .tasks import TaskView

SUBMIT_PATH = "/videos/generations"
UNCERTAIN_HINT = (
    "`kling list` shows the request as `uncertain`; look for the task on the provider's "
    "dashboard before submitting again"
)
# After a lost answer, the waits between lookups by business id: about 10 s in all.
LOOKUP_WAITS = (1.0, 2.0, 3.0, 4.0)


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
                return one_line(str(msg)), err.get("code")
        elif isinstance(err, str) and err.strip():
            return one_line(err), data.get("code")
        for field in ("message", "msg", "detail"):
            if isinstance(data.get(field), str) and data[field].strip():
                return one_line(data[field]), data.get("code")
    if "html" in content_type.lower() or text[:200].lower().lstrip().startswith(
        ("<!doctype", "<html")
    ):
        title = _html_title(text)
        return (
            f"{title} (an HTML page, probably from a proxy)" if title else "an HTML error page"
        ), None
    if text:
        return one_line(text), None
    return reason or "no message", None


def answers(task: TaskView, asked: str, by_business_id: bool) -> bool:
    """Whether `task` is the task asked about: its id, or the business id it echoes (the
    service need not echo it on a GET: asked by a business id, an answer without one is it)."""
    if task.id and task.id == asked:
        return True
    echoed = task.business_id
    if echoed is not None:
        return bool(task.id) and echoed == asked
    return by_business_id and bool(task.id)


def _html_title(text: str) -> str:
    lower = text.lower()
    start = lower.find("<title>")
    end = lower.find("</title>", start)
    if start == -1 or end == -1:
        return ""
    return one_line(text[start + len("<title>") : end])


class Client:
    """The endpoints, over one Http (its options: `Http`'s)."""

    def __init__(self, base_url: str, key: str | None, **http: Any):
        self.http = Http(base_url, key, **http)
        self.api = self.http.api
        self._key = key  # only to keep it out of the service's messages

    # --- the endpoints -----------------------------------------------------------------------

    def submit(self, body: Mapping[str, Any], *, deadline: float | None = None) -> TaskView:
        """The generation POST, and if its answer is lost, a look for the task it may have
        made, by its business id: found, the task as if the answer had come; not found, the
        send stays uncertain (SubmitUncertain naming the business id). Never sent again."""
        try:
            return self.create_task(body, deadline=deadline)
        except SubmitUncertain as lost:
            business_id = body.get("client_business_id")
            if not isinstance(business_id, str):
                raise
            found = self.find_sent(business_id, deadline)
            if found is not None:
                if self.http.notice is not None:
                    self.http.notice(
                        f"the answer to the generation request was lost; its task {found.id} "
                        f"was found under its business id {business_id}"
                    )
                return found
            lost.business_id = business_id
            lost.message += f"; no task was found under its business id {business_id}"
            lost.hint = (
                f"`kling status {business_id}` looks for it again later; `kling list` shows "
                "the send as `uncertain`"
            )
            raise

    def find_sent(self, business_id: str, deadline: float | None = None) -> TaskView | None:
        """The task a send with this business id made, asked for a few times over about 10 s
        (a task may take a moment to be found; `deadline` cuts it short, after one look)."""
        for wait in (*LOOKUP_WAITS, None):
            try:
                return self.get_task(business_id, deadline=deadline, business_id=True)
            except KlingError:
                pass  # not found (yet), or the service is not answering: look again
            if wait is None or (deadline is not None and self.http.clock() + wait >= deadline):
                return None
            self.http.sleep(wait)
        return None

    def create_task(self, body: Mapping[str, Any], *, deadline: float | None = None) -> TaskView:
        """The generation POST: sent once, and never again once it may have arrived."""
        try:
            answer = self._api(
                "POST", SUBMIT_PATH, retry=Retry.SUBMIT, json=dict(body), deadline=deadline
            )
        except RequestFailed as exc:
            if not exc.sent:
                raise
            raise SubmitUncertain(
                f"the generation request may have reached {exc.host} ({exc.description}); "
                "it was not sent again, so no second task was made",
                hint=UNCERTAIN_HINT,
            ) from None
        except APIError as exc:
            if exc.status < 500:
                raise
            raise SubmitUncertain(  # a gateway may fail after passing the request on
                f"the service answered {exc.status}: {exc.service_message}; the generation "
                "request may still have made a task, so it was not sent again",
                hint=UNCERTAIN_HINT,
            ) from None
        try:
            task = TaskView.of(self._json_object(answer))
        except ServiceUnavailable as exc:  # answered 2xx: it may well have made the task
            raise SubmitUncertain(exc.message, hint=UNCERTAIN_HINT) from None
        if not task.id:
            raise SubmitUncertain(
                "the service accepted the request but returned no task id: "
                + one_line(answer.text, 200),
                hint=UNCERTAIN_HINT,
            )
        return task

    def get_task(
        self, task_id: str, *, deadline: float | None = None, business_id: bool = False
    ) -> TaskView:
        """A task by its id, or (`business_id`) by the business id it was sent with (API.md
        1c). An answer about another task is refused, never taken for the one asked about."""
        if task_id.strip(".") == "":  # "", "." and ".." would name another path
            raise UsageError(f"{task_id!r} is not a task id")
        path = f"{SUBMIT_PATH}/{quote(task_id, safe='')}"
        try:
            answer = self._api("GET", path, task_id=task_id, deadline=deadline)
        except APIError as exc:
            if business_id and exc.status == 404:  # the uncertain send made no task (yet)
                exc.message += f"; no task was found under the business id {task_id}"
                exc.hint = (
                    "the send made no task, as far as the service knows now; `kling list` keeps "
                    "it as `uncertain`, with its prompt, to send again"
                )
            raise
        task = TaskView.of(self._json_object(answer, task_id=task_id))
        if not answers(task, task_id, business_id):
            raise ServiceUnavailable(
                f"the service answered about task {task.id or '(no id)'} when asked about "
                f"{task_id}; the answer was not used",
                task_id=task_id,
            )
        return task

    def get_balance(self, *, retry: bool = True) -> dict[str, Any]:
        """The key's quota (API.md section 4). A key the service does not know comes back as
        200 with `success: false`: that is an authentication problem (exit 3). `retry=False`:
        one try, for a look that is only advice (batch's check before sending)."""
        answer = self._json_object(
            self._api("GET", "/balance", retry=Retry.READ if retry else Retry.ONCE)
        )
        if answer.get("success") is False:
            message = answer.get("message") or "the service does not know this API key"
            raise AuthError(
                f"the service does not know this API key: {self._words(str(message))}",
                hint="check the key with `kling config get api_key` or KLING_API_KEY",
            )
        return answer

    def upload_image(
        self, path: Path, purpose: str = "generation", on_bytes: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        try:
            content = path.read_bytes()  # images are at most 10 MB
        except OSError as exc:
            raise LocalFileError(f"cannot read {path}: {exc.strerror}") from None
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        form = {"purpose": purpose, "file": (path.name, content, mime)}
        answer = self._json_object(
            self._api("POST", "/uploads/images", form=form, on_bytes=on_bytes)
        )
        data = answer.get("data")
        if answer.get("success") is False or not isinstance(data, dict) or not data.get("url"):
            message = answer.get("message") or "the upload returned no URL"
            raise APIError(400, self._words(str(message)))
        return data

    def open_video(
        self, url: str, headers: Mapping[str, str] | None = None, deadline: float | None = None
    ) -> Stream:
        """A streamed GET of a video (the video host never gets the key: http.py's rule)."""
        try:
            return self.http.stream(url, headers or {}, deadline)
        except RequestFailed as exc:
            exc.message = f"could not download {url}: {exc.description}"
            raise

    # --- plumbing ----------------------------------------------------------------------------

    def _api(self, method: str, path: str, *, task_id: str | None = None, **kw: Any) -> Answer:
        if not self._key:
            raise MissingKeyError("no API key")
        answer = self.http.call(method, self.api + path, **kw)
        if answer.status >= 400:
            content_type = answer.headers.get("Content-Type", "")
            message, code = error_message(answer.body, content_type, answer.reason)
            raise APIError(answer.status, self._words(message), code=code, task_id=task_id)
        return answer

    def _words(self, text: str) -> str:
        """The service's words, without the key if it echoed it back."""
        return text.replace(self._key, "<redacted>") if self._key else text

    def _json_object(self, answer: Answer, task_id: str | None = None) -> dict[str, Any]:
        try:
            data = json.loads(answer.body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise ServiceUnavailable(
                f"the service answered something unreadable (HTTP {answer.status}): "
                + one_line(answer.text or "an empty body", 200),
                task_id=task_id,
            )
        return data

    def close(self) -> None:
        self.http.close()
