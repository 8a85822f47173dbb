"""The sandbox's answers: the API endpoints, the video and upload host, and fault answers.

Each function maps a request to a `Response` from the state and the config; nothing here
touches a socket (that is `httpd`) or runs anything (that is `server.Sandbox`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import Message
from functools import cache
from importlib import resources
from urllib.parse import unquote, urlsplit

from . import faults as fk
from .config import SandboxConfig
from .httpd import BadBody, Response, error, hang_up, json_response, parse_multipart
from .rules import ASPECT_RATIOS, Rejection
from .state import UNKNOWN_KEY_ANSWER, Lost, SandboxState, task_not_found

GENERATIONS = "/v1/videos/generations"
UPLOADS = "/v1/uploads/images"
BALANCE_PATHS = ("/v1/balance", "/balance")
_TASK_PATH = re.compile(r"/v1/videos/generations/([^/]+)")
_VIDEO_PATH = re.compile(r"/videos/([^/]+)\.mp4")
_UPLOAD_PATH = re.compile(r"/uploads/([^/]+)")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Request:
    listener: str  # "api" or "files"
    method: str
    path: str  # without the query string
    headers: Message  # as received: names are case-insensitive
    body: bytes


def endpoint(listener: str, method: str, path: str) -> str:
    """The request's endpoint, ids left out ("GET /v1/videos/generations/{id}", a business id
    too): the key the request counts go by, so there are few of them however many tasks there
    are."""
    path = urlsplit(path).path
    if listener == "files":
        if _VIDEO_PATH.fullmatch(path):
            return f"{method} /videos/{{id}}.mp4"
        if _UPLOAD_PATH.fullmatch(path):
            return f"{method} /uploads/{{name}}"
    elif path in (GENERATIONS, UPLOADS, *BALANCE_PATHS):
        return f"{method} {path}"
    elif _TASK_PATH.fullmatch(path):
        return f"{method} {GENERATIONS}/{{id}}"
    return f"{method} (no such endpoint)"


def bearer_key(value: str | None) -> str | None:
    """The key of an `Authorization: Bearer KEY` header, or None."""
    scheme, _, token = (value or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_accepted(config: SandboxConfig, authorization: str | None) -> bool:
    """A bearer key that is not revoked: any other key is served."""
    key = bearer_key(authorization)
    return key is not None and key not in config.revoked_keys


@cache
def clip(aspect_ratio: str) -> bytes:
    """The MP4 clip of an aspect ratio, from the package's assets."""
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(f"no clip for aspect ratio {aspect_ratio!r}; known: {ASPECT_RATIOS}")
    name = "clip_" + aspect_ratio.replace(":", "x") + ".mp4"
    return resources.files(__package__).joinpath("assets").joinpath(name).read_bytes()


# -- answers that are not the endpoint's own ---------------------------------------------------


def unauthorized() -> Response:
    return error(401, "Invalid or missing API key", "invalid_api_key", "authentication_error")


def not_found(path: str) -> Response:
    return error(404, f"no such endpoint: {path}", "not_found")


def not_allowed(method: str, allowed: str) -> Response:
    resp = error(405, f"method {method} is not allowed here", "method_not_allowed")
    resp.headers["Allow"] = allowed
    return resp


def bad_body(path: str, problem: BadBody) -> Response:
    if problem.too_large:
        if urlsplit(path).path == UPLOADS:  # as the service: its own answer for a big file
            return json_response(400, {"success": False, "message": "File Too Large"})
        return error(413, str(problem), "request_too_large")
    return error(400, str(problem), "bad_request")


def bad_config(problem: ValueError) -> Response:
    return error(500, f"sandbox: bad config: {problem}", "sandbox_config", "bug")


def sandbox_bug(problem: Exception) -> Response:
    # Answered visibly rather than hanging up.
    return error(500, f"sandbox internal error: {problem!r}", "sandbox_bug", "bug")


def fault_answer(fault: str, faults: fk.FaultInjector) -> Response:
    """The answer that replaces the real one for a fault in `fk.REPLACING_KINDS`."""
    if fault == fk.RATE_LIMIT:
        resp = error(429, "sandbox: too many requests, slow down", "rate_limited", "rate_limit")
        resp.headers["Retry-After"] = "1"
        return resp
    if fault == fk.SERVER_ERROR_JSON:
        return json_response(
            faults.server_error_status(),
            {"error": {"message": "sandbox: simulated server error", "type": "server_error"}},
        )
    return Response(502, fk.BAD_GATEWAY_PAGE, "text/html")


# -- the endpoints -----------------------------------------------------------------------------


def answer(request: Request, state: SandboxState, config: SandboxConfig) -> Response:
    if request.listener == "files":
        return _files(request, state)
    return _api(request, state, config)


def _api(request: Request, state: SandboxState, config: SandboxConfig) -> Response:
    method, path = request.method, request.path
    authorization = request.headers.get("Authorization")
    if not key_accepted(config, authorization):
        return unauthorized()
    if path in BALANCE_PATHS:
        if method != "GET":
            return not_allowed(method, "GET")
        if bearer_key(authorization) in config.unknown_keys:
            return json_response(200, UNKNOWN_KEY_ANSWER)
        return json_response(200, state.balance(config.balance, config.unlimited))
    if path == GENERATIONS:
        if method != "POST":
            return not_allowed(method, "POST")
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):  # ValueError covers bad UTF-8 too
            payload = None
        result = state.create_task(payload, config.max_running)
        if isinstance(result, Rejection):
            return _rejection(result)
        if isinstance(result, Lost):  # [lost], [lost-no-task]
            return hang_up()
        return json_response(200, result)
    match = _TASK_PATH.fullmatch(path)
    if match:
        if method != "GET":
            return not_allowed(method, "GET")
        # A task id, or the business id of a task (API.md 1c): answered alike.
        view = state.view(unquote(match[1]))
        if view is None:
            return _rejection(task_not_found())
        return json_response(200, view)
    if path == UPLOADS:
        if method != "POST":
            return not_allowed(method, "POST")
        parts = parse_multipart(request.headers.get("Content-Type", ""), request.body)
        # Not multipart at all: there is no file field either.
        file_part = next((p for p in parts or [] if p.name == "file"), None)
        status, body = state.add_upload(None if file_part is None else file_part.data)
        return json_response(status, body)
    return not_found(path)


def _rejection(rej: Rejection) -> Response:
    return json_response(rej.status, rej.body, dict(rej.headers))


def _files(request: Request, state: SandboxState) -> Response:
    method, path = request.method, request.path
    video = _VIDEO_PATH.fullmatch(path)
    upload = _UPLOAD_PATH.fullmatch(path)
    if not (video or upload):
        return not_found(path)
    if method not in ("GET", "HEAD"):
        return not_allowed(method, "GET, HEAD")
    range_header = request.headers.get("Range", "")
    if video:
        status, aspect_ratio = state.video_file(unquote(video[1]))
        if status == 410:
            return error(410, "the video URL has expired", "expired")
        if status != 200:
            return error(404, "no such video (yet)", "not_found")
        return _file(clip(aspect_ratio), "video/mp4", range_header)
    assert upload is not None
    stored = state.get_upload(unquote(upload[1]))
    if stored is None:
        return error(404, "no such upload", "not_found")
    return _file(stored.data, stored.mime_type, range_header)


def _file(data: bytes, content_type: str, range_header: str) -> Response:
    """200 with the whole file, or 206/416 for a single `Range: bytes=...`."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes"}
    match = _RANGE.fullmatch(range_header.strip())
    if not match or not (match[1] or match[2]):
        return Response(200, data, content_type, headers)  # no (usable) range: all of it
    if match[1]:
        start = int(match[1])
        end = int(match[2]) if match[2] else size - 1
        if match[2] and end < start:
            return Response(200, data, content_type, headers)  # invalid: ignored (RFC 9110)
    else:  # bytes=-N: the last N bytes
        start, end = max(0, size - int(match[2])), size - 1
        if int(match[2]) == 0:
            start = size
    if start >= size:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(416, b"", None, headers)
    end = min(end, size - 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(206, data[start : end + 1], content_type, headers)
