"""The sandbox's HTTP side: two loopback listeners (the API and the video host) and `Sandbox`.

Standard library only, so the simulator stays light and independent of the CLI's own stack.
Nothing is printed: every request is kept in `Sandbox.log` instead, since the CLI's stderr must
stay clean while the sandbox serves it in-process.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from . import faults as fk
from .state import (
    ASPECT_RATIOS,
    DEFAULT_BALANCE,
    DELETE,
    UNKNOWN_KEY_ANSWER,
    Rejection,
    SandboxState,
    Task,
    task_not_found,
)

__all__ = ["DEFAULT_BALANCE", "DELETE", "RequestRecord", "Sandbox", "SandboxConfig", "run"]

LOG_BODY_CAP = 64 * 1024
MAX_REQUEST_BODY = 32 * 1024 * 1024  # above the 10 MB upload limit, so that one gets its 400
JSON_PARSE_CAP = 1024 * 1024
IDLE_TIMEOUT = 60.0  # an idle keep-alive connection is closed after this many seconds
STOP_GRACE = 2.0

_TASK_PATH = re.compile(r"/v1/videos/generations/([^/]+)")
_VIDEO_PATH = re.compile(r"/videos/([^/]+)\.mp4")
_UPLOAD_PATH = re.compile(r"/uploads/([^/]+)")
_BALANCE_PATHS = ("/v1/balance", "/balance")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class SandboxConfig:
    """How the sandbox behaves. Read live: a test may change `sb.config.faults` (or any field)
    between requests, and the next request follows it."""

    queue_seconds: float = 1.0
    run_seconds: float = 3.0
    faults: float = 0.0
    fault_kinds: Iterable[str] | None = None
    seed: int | None = None
    max_running: int | None = None
    clock: Callable[[], float] = time.monotonic
    # For the Unix timestamps in answers (created_at, completed_at, expires_at).
    wall_clock: Callable[[], float] = time.time
    # The account behind every key: its balance at start (each task spends some; see
    # `state.task_cost`), or no limit at all.
    balance: float = DEFAULT_BALANCE
    unlimited: bool = False
    # Keys the balance endpoint does not know (200 with success false); other endpoints serve them.
    unknown_keys: set[str] = field(default_factory=set)
    # Keys refused with 401 on every endpoint, as a missing key is.
    revoked_keys: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not 0.0 <= self.faults <= 1.0:
            raise ValueError(f"faults must be within 0..1, not {self.faults}")
        if not math.isfinite(self.balance):
            raise ValueError(f"balance must be a finite number, not {self.balance}")
        # Sets, so a test may add keys later; a lone key is a common slip for a collection.
        self.unknown_keys = _key_set(self.unknown_keys)
        self.revoked_keys = _key_set(self.revoked_keys)
        if self.fault_kinds is not None:
            # A tuple: a generator would be used up by the first request.
            self.fault_kinds = fk.check_kinds(self.fault_kinds)


def _key_set(keys: Iterable[str] | str) -> set[str]:
    return {keys} if isinstance(keys, str) else set(keys)


@dataclass(frozen=True)
class RequestRecord:
    """One request as received. Header names are canonical (`Content-Type`); the value of
    `Authorization` is replaced by "<redacted>", so its presence still shows."""

    listener: str  # "api" or "files"
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes  # at most LOG_BODY_CAP bytes
    json: Any  # the parsed body, or None
    status: int | None  # None: the connection was dropped without an answer
    fault: str | None

    @property
    def has_auth(self) -> bool:
        return "Authorization" in self.headers


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def _json_response(status: int, obj: object, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(obj).encode(), headers=dict(headers or {}))


def _rejection(rej: Rejection) -> _Response:
    return _json_response(rej.status, rej.body, dict(rej.headers))


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> _Response:
    return _json_response(status, {"error": {"message": message, "type": kind, "code": code}})


def _unauthorized() -> _Response:
    return _error(401, "Invalid or missing API key", "invalid_api_key", "authentication_error")


def _not_found(path: str) -> _Response:
    return _error(404, f"no such endpoint: {path}", "not_found")


def _not_allowed(method: str, allowed: str) -> _Response:
    resp = _error(405, f"method {method} is not allowed here", "method_not_allowed")
    resp.headers["Allow"] = allowed
    return resp


@cache
def _clip(aspect_ratio: str) -> bytes:
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(f"no clip for aspect ratio {aspect_ratio!r}; known: {ASPECT_RATIOS}")
    name = "clip_" + aspect_ratio.replace(":", "x") + ".mp4"
    return resources.files(__package__).joinpath("assets").joinpath(name).read_bytes()


def _bearer_key(value: str | None) -> str | None:
    """The key of an `Authorization: Bearer KEY` header, or None."""
    scheme, _, token = (value or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


@dataclass(frozen=True)
class FormPart:
    name: str | None
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[FormPart] | None:
    """The parts of a multipart/form-data body, or None when it is not one (binary-safe)."""
    header = Message()
    header["Content-Type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        return None
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return None
    # Delimiters are CRLF + "--" + boundary; the CRLF belongs to the delimiter, not the data.
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts: list[FormPart] = []
    for chunk in chunks[1:]:  # chunks[0] is the preamble
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        _, _, rest = chunk.partition(b"\r\n")  # the remainder of the delimiter line
        raw_headers, sep, data = rest.partition(b"\r\n\r\n")
        if not sep:
            if not rest.startswith(b"\r\n"):  # a part without headers starts with its blank line
                continue
            raw_headers, data = b"", rest[2:]
        part_headers = Message()
        for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part_headers[name.strip()] = value.strip()
        disposition_name = part_headers.get_param("name", header="content-disposition")
        parts.append(
            FormPart(
                name=disposition_name if isinstance(disposition_name, str) else None,
                filename=part_headers.get_filename(),
                content_type=part_headers.get("Content-Type"),
                data=data,
            )
        )
    return parts


class _BadBody(Exception):
    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Not True: server_close would wait for every keep-alive connection a client left open.
    block_on_close = False

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, listener: str) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self.listener = listener
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer's socket.getfqdn(): a reverse DNS lookup can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_changed:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            with self._connections_changed:
                self._connections.discard(request)
                self._connections_changed.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away is no news; and stderr must stay clean

    def close_connections(self, timeout: float) -> None:
        """Wake the handlers of open connections (idle keep-alives) and wait for them to end."""
        with self._connections_changed:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)
            self._connections_changed.wait_for(lambda: not self._connections, timeout)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    # Headers and body go out in two writes; with Nagle on, keep-alive clients would wait for
    # a delayed ACK (about 40 ms) on every request.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "kling-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests go to Sandbox.log, never to stderr

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests: JSON like every other answer, instead of the default HTML page.
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps(
            {"error": {"message": message or phrase, "type": "invalid_request_error"}}
        )
        self.send_response(code, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body.encode())
        self.close_connection = True

    # -- one request ---------------------------------------------------------------------------

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        listener = self.server.listener
        method = self.command
        headers = {
            _canonical(k): ("<redacted>" if k.lower() == "authorization" else v)
            for k, v in self.headers.items()
        }
        # Faults hit only requests that would otherwise be served: an API request without a
        # key, or with a revoked one, gets its 401, whatever the fault rate.
        eligible = listener == "files" or sandbox._key_accepted(self.headers.get("Authorization"))
        download = listener == "files" and method == "GET"
        try:
            fault = sandbox._sync_config(pick_fault=eligible, download=download)
        except ValueError as exc:  # the config was changed to something invalid
            response = _error(500, f"sandbox: bad config: {exc}", "sandbox_config", "bug")
            response.close = True  # the body was not read
            sandbox._record(listener, method, self.path, headers, b"", 500, None)
            self._send(response, head=method == "HEAD")
            return

        if fault == fk.DROP_BEFORE:
            self.close_connection = True
            sandbox._record(listener, method, self.path, headers, b"", None, fault)
            return

        try:
            body = self._read_body()
        except _BadBody as bad:
            response = bad.response
            response.close = True
            sandbox._record(listener, method, self.path, headers, b"", response.status, fault)
            self._send(response, head=method == "HEAD")
            return

        if fault in fk.REPLACING_KINDS:
            response = self._fault_response(fault)
        else:
            try:
                response = self._route(listener, method, body)
            except Exception as exc:  # a sandbox bug: answer it visibly rather than hang up
                response = _error(500, f"sandbox internal error: {exc!r}", "sandbox_bug", "bug")

        if fault == fk.DROP_AFTER:
            # Processed (a generation was created), but the answer never leaves.
            self.close_connection = True
            sandbox._record(listener, method, self.path, headers, body, None, fault)
            return
        sandbox._record(listener, method, self.path, headers, body, response.status, fault)
        if fault == fk.SLOW:
            sandbox._stopping.wait(fk.SLOW_SECONDS)  # stop() cuts the wait short
        self._send(response, head=method == "HEAD", truncate=fault == fk.TRUNCATED_BODY)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            raise _BadBody(_error(400, "invalid Content-Length", "bad_request")) from None
        if length > MAX_REQUEST_BODY:
            raise _BadBody(self._too_large())
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadBody(_error(400, "bad chunked encoding", "bad_request")) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            if len(data) + size > MAX_REQUEST_BODY:
                raise _BadBody(self._too_large())
            data += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after the chunk

    def _too_large(self) -> _Response:
        if urlsplit(self.path).path == "/v1/uploads/images":
            return _json_response(400, {"success": False, "message": "File Too Large"})
        return _error(413, "request body too large", "request_too_large")

    def _fault_response(self, fault: str) -> _Response:
        if fault == fk.RATE_LIMIT:
            resp = _error(
                429, "sandbox: too many requests, slow down", "rate_limited", "rate_limit"
            )
            resp.headers["Retry-After"] = "1"
            return resp
        if fault == fk.SERVER_ERROR_JSON:
            status = self.server.sandbox._faults.server_error_status()
            return _json_response(
                status,
                {"error": {"message": "sandbox: simulated server error", "type": "server_error"}},
            )
        return _Response(502, fk.BAD_GATEWAY_PAGE, "text/html")

    def _send(self, response: _Response, *, head: bool = False, truncate: bool = False) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            return
        if truncate:
            # The full length was promised; half arrives, then the connection goes.
            self.wfile.write(response.body[: len(response.body) // 2])
            self.close_connection = True
            return
        self.wfile.write(response.body)

    # -- routes --------------------------------------------------------------------------------

    def _route(self, listener: str, method: str, body: bytes) -> _Response:
        path = urlsplit(self.path).path
        if listener == "files":
            return self._route_files(method, path)
        sandbox = self.server.sandbox
        authorization = self.headers.get("Authorization")
        if not sandbox._key_accepted(authorization):
            return _unauthorized()
        state = sandbox.state
        if path in _BALANCE_PATHS:
            if method != "GET":
                return _not_allowed(method, "GET")
            if _bearer_key(authorization) in sandbox.config.unknown_keys:
                return _json_response(200, UNKNOWN_KEY_ANSWER)
            return _json_response(
                200, state.balance(sandbox.config.balance, sandbox.config.unlimited)
            )
        if path == "/v1/videos/generations":
            if method != "POST":
                return _not_allowed(method, "POST")
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):  # ValueError covers bad UTF-8 too
                payload = None
            result = state.create_task(payload, sandbox.config.max_running)
            if isinstance(result, Rejection):
                return _rejection(result)
            return _json_response(200, result)
        match = _TASK_PATH.fullmatch(path)
        if match:
            if method != "GET":
                return _not_allowed(method, "GET")
            view = state.view(unquote(match[1]))
            if view is None:
                return _rejection(task_not_found())
            return _json_response(200, view)
        if path == "/v1/uploads/images":
            if method != "POST":
                return _not_allowed(method, "POST")
            parts = parse_multipart(self.headers.get("Content-Type", ""), body)
            # Not multipart at all: there is no file field either.
            file_part = next((p for p in parts or [] if p.name == "file"), None)
            status, answer = state.add_upload(None if file_part is None else file_part.data)
            return _json_response(status, answer)
        return _not_found(path)

    def _route_files(self, method: str, path: str) -> _Response:
        video = _VIDEO_PATH.fullmatch(path)
        upload = _UPLOAD_PATH.fullmatch(path)
        if not (video or upload):
            return _not_found(path)
        if method not in ("GET", "HEAD"):
            return _not_allowed(method, "GET, HEAD")
        state = self.server.sandbox.state
        if video:
            status, aspect_ratio = state.video_file(unquote(video[1]))
            if status == 410:
                return _error(410, "the video URL has expired", "expired")
            if status != 200:
                return _error(404, "no such video (yet)", "not_found")
            return self._file(_clip(aspect_ratio), "video/mp4")
        assert upload is not None
        stored = state.get_upload(unquote(upload[1]))
        if stored is None:
            return _error(404, "no such upload", "not_found")
        return self._file(stored.data, stored.mime_type)

    def _file(self, data: bytes, content_type: str) -> _Response:
        """200 with the whole file, or 206/416 for a single `Range: bytes=...`."""
        size = len(data)
        headers = {"Accept-Ranges": "bytes"}
        match = _RANGE.fullmatch(self.headers.get("Range", "").strip())
        if not match or not (match[1] or match[2]):
            return _Response(200, data, content_type, headers)  # no (usable) range: all of it
        if match[1]:
            start = int(match[1])
            end = int(match[2]) if match[2] else size - 1
            if match[2] and end < start:
                return _Response(200, data, content_type, headers)  # invalid: ignored (RFC 9110)
        else:  # bytes=-N: the last N bytes
            start, end = max(0, size - int(match[2])), size - 1
            if int(match[2]) == 0:
                start = size
        if start >= size:
            headers["Content-Range"] = f"bytes */{size}"
            return _Response(416, b"", None, headers)
        end = min(end, size - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return _Response(206, data[start : end + 1], content_type, headers)


class Sandbox:
    """The simulator: an API listener and a video-host listener, each on its own port.

    The sockets are bound on construction (so `base_url` is known at once); `start()` serves
    them on background threads, `stop()` closes everything. Also a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SandboxConfig | None = None,
        *,
        file_port: int = 0,
    ) -> None:
        self.config = config or SandboxConfig()
        self._faults = fk.FaultInjector(
            self.config.faults, self.config.fault_kinds, self.config.seed
        )
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self._api = _Server((host, port), self, "api")
        try:
            self._files = _Server((host, file_port), self, "files")
        except BaseException:
            self._api.server_close()
            raise
        self.state = SandboxState(
            self.file_base_url,
            queue_seconds=self.config.queue_seconds,
            run_seconds=self.config.run_seconds,
            clock=self.config.clock,
            wall_clock=self.config.wall_clock,
        )

    # -- addresses -----------------------------------------------------------------------------

    @staticmethod
    def _url(server: _Server) -> str:
        host, port = server.server_address[:2]
        host = str(host)
        # A wildcard bind is reached through loopback on this machine.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self._url(self._api)

    @property
    def file_base_url(self) -> str:
        return self._url(self._files)

    # -- running -------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._threads:
            return self
        if self._stopped:
            raise RuntimeError("this sandbox was stopped; make a new one")
        for server in (self._api, self._files):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"kling-sandbox-{server.listener}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()  # ends `slow` faults' waits
        if self._threads:
            # Both at once: each shutdown() waits up to one poll interval for its loop.
            stopper = threading.Thread(target=self._files.shutdown, daemon=True)
            stopper.start()
            self._api.shutdown()
            stopper.join()
            for thread in self._threads:
                thread.join()
        for server in (self._api, self._files):
            server.close_connections(STOP_GRACE)
            server.server_close()

    def serve_forever(self, on_ready: Callable[[Sandbox], None] | None = None) -> None:
        """Serve in the foreground until KeyboardInterrupt (or `stop()` from elsewhere)."""
        self.start()
        try:
            if on_ready is not None:
                on_ready(self)
            # Short waits: the main thread must stay responsive to Ctrl-C.
            while not self._stopping.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests look at --------------------------------------------------------------------

    @property
    def log(self) -> list[RequestRecord]:
        return self._log

    @property
    def tasks_created(self) -> int:
        return self.state.tasks_created

    @property
    def faults_injected(self) -> Counter[str]:
        return self._faults.counts()

    def clip_bytes(self, aspect_ratio: str = "16:9") -> bytes:
        return _clip(aspect_ratio)

    def set_task(self, task_id: str, **fields: Any) -> None:
        """Override fields of a task's answer (e.g. status="weird"); `DELETE` removes one."""
        self.state.set_task(task_id, **fields)

    def task(self, task_id: str) -> Task:
        """The stored task (prompt as stored, body as sent); KeyError for an unknown id."""
        task = self.state.get_task(task_id)
        if task is None:
            raise KeyError(task_id)
        return task

    def tasks(self) -> list[Task]:
        """Every task created so far, in creation order (tests count them per prompt)."""
        return self.state.all_tasks()

    def _key_accepted(self, authorization: str | None) -> bool:
        """A bearer key that is not revoked: any other key is served."""
        key = _bearer_key(authorization)
        return key is not None and key not in self.config.revoked_keys

    def _sync_config(self, *, pick_fault: bool, download: bool) -> str | None:
        """Apply the (live) config to the state and the fault injector; the request's fault."""
        cfg = self.config
        self.state.queue_seconds = max(0.0, cfg.queue_seconds)
        self.state.run_seconds = max(0.0, cfg.run_seconds)
        self.state.clock = cfg.clock
        self.state.wall_clock = cfg.wall_clock
        self._faults.configure(cfg.faults, cfg.fault_kinds)
        return self._faults.pick(download=download) if pick_fault else None

    def _record(
        self,
        listener: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        status: int | None,
        fault: str | None,
    ) -> None:
        parsed: Any = None
        is_form = headers.get("Content-Type", "").lower().startswith("multipart/")
        if body and not is_form and len(body) <= JSON_PARSE_CAP:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
        record = RequestRecord(
            listener, method, path, headers, body[:LOG_BODY_CAP], parsed, status, fault
        )
        with self._log_lock:
            self._log.append(record)


def run(
    host: str,
    port: int,
    config: SandboxConfig,
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve in the foreground until KeyboardInterrupt; `on_ready` runs once listening."""
    Sandbox(host, port, config).serve_forever(on_ready)
