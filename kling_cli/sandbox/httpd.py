"""The sandbox's HTTP plumbing: threaded loopback listeners, request parsing, the request log.

Nothing here knows the API: each request is handed, as an `Exchange`, to the callback its
`Listener` was made with (`Sandbox` in `server`), which answers it with a `Response`.
Standard library only. Nothing is printed, since the CLI's stderr must stay clean while the
sandbox serves it in-process.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, overload

LOG_BODY_CAP = 64 * 1024
MAX_REQUEST_BODY = 32 * 1024 * 1024  # above the 10 MB upload limit, so that one gets its 400
JSON_PARSE_CAP = 1024 * 1024
IDLE_TIMEOUT = 60.0  # an idle keep-alive connection is closed after this many seconds


# -- answers -----------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False
    # No answer at all: the connection closes instead (`Exchange.drop`), as on a lost answer.
    drop: bool = False


def hang_up() -> Response:
    """The answer that is none: the connection closes without a status line."""
    return Response(0, content_type=None, drop=True)


def json_response(status: int, obj: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode(), headers=dict(headers or {}))


def error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> Response:
    return json_response(status, {"error": {"message": message, "type": kind, "code": code}})


# -- what was received -------------------------------------------------------------------------


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
    # None: the connection was dropped without an answer (a drop fault, or a `[lost]` or
    # `[lost-no-task]` prompt marker, whose record has no fault)
    status: int | None
    fault: str | None

    @property
    def has_auth(self) -> bool:
        return "Authorization" in self.headers

    @classmethod
    def of(
        cls,
        listener: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        status: int | None,
        fault: str | None,
    ) -> RequestRecord:
        parsed: Any = None
        is_form = headers.get("Content-Type", "").lower().startswith("multipart/")
        if body and not is_form and len(body) <= JSON_PARSE_CAP:
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
        return cls(listener, method, path, headers, body[:LOG_BODY_CAP], parsed, status, fault)


class RequestLog(Sequence[RequestRecord]):
    """The most recent `size` requests, oldest first, and exact counts of every request.

    Reads like the list it replaces (index, slice, iterate, `== []`, `clear()`), and is safe to
    read while the listeners append. The counts are never dropped, nor reset by `clear()`.
    """

    def __init__(self, size: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def append(self, record: RequestRecord, endpoint: str) -> None:
        with self._lock:
            self._records.append(record)
            self._counts[endpoint] += 1

    def clear(self) -> None:
        """Forget the records (a test's fresh start); the counts stay."""
        with self._lock:
            self._records.clear()

    @property
    def counts(self) -> Counter[str]:
        """Every request so far by endpoint (`routes.endpoint`): a copy."""
        with self._lock:
            return Counter(self._counts)

    @property
    def size(self) -> int:
        maxlen = self._records.maxlen
        assert maxlen is not None
        return maxlen

    def _snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> RequestRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[RequestRecord]: ...
    def __getitem__(self, index: int | slice) -> RequestRecord | list[RequestRecord]:
        if isinstance(index, slice):
            return self._snapshot()[index]
        with self._lock:
            return self._records[index]

    def __iter__(self) -> Iterator[RequestRecord]:
        # A copy: a deque refuses to be iterated while another thread appends.
        return iter(self._snapshot())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RequestLog):
            return self._snapshot() == other._snapshot()
        if isinstance(other, list):
            return self._snapshot() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        return f"RequestLog({self._snapshot()!r})"


# -- request bodies ----------------------------------------------------------------------------


class BadBody(Exception):
    """A request body that cannot be read: a bad length or chunking (400), or too large."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


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


# -- listeners ---------------------------------------------------------------------------------


class Listener(ThreadingHTTPServer):
    """One loopback listener ("api" or "files"): a thread per connection, each request given
    to `serve`. Tracks its connections, so `close_connections` can end idle keep-alives."""

    daemon_threads = True
    # Not True: server_close would wait for every keep-alive connection a client left open.
    block_on_close = False
    # A real server's backlog (nginx: 511), not socketserver's 5: with dozens of connections
    # opened at once (`wait` polling many tasks) the surplus handshakes were dropped, and each
    # of those clients waited out TCP's retries (1 s, 3 s, 7 s ...) before its first request.
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self, address: tuple[str, int], name: str, serve: Callable[[Exchange], None]
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.name = name
        self.serve = serve
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        super().__init__(address, Exchange)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        # A wildcard bind is reached through loopback on this machine.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

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


class Exchange(BaseHTTPRequestHandler):
    """One connection's requests: reads each, hands it to the listener's `serve`, which reads
    the body (`read_body`) and answers (`send`) or hangs up (`drop`)."""

    server: Listener
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
        self.server.serve(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    @property
    def listener(self) -> str:
        return self.server.name

    def logged_headers(self) -> dict[str, str]:
        """The headers for the log: canonical names (`Content-Type`), the key's value redacted."""
        logged: dict[str, str] = {}
        for raw, value in self.headers.items():
            name = "-".join(part.capitalize() for part in raw.split("-"))
            logged[name] = "<redacted>" if name == "Authorization" else value
        return logged

    def read_body(self) -> bytes:
        """The body, by Content-Length or chunked; `BadBody` when it cannot be read."""
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
            raise BadBody("invalid Content-Length") from None
        if length > MAX_REQUEST_BODY:
            raise BadBody("request body too large", too_large=True)
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBody("bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            if len(data) + size > MAX_REQUEST_BODY:
                raise BadBody("request body too large", too_large=True)
            data += self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after the chunk

    def drop(self) -> None:
        """No answer: the connection closes."""
        self.close_connection = True

    def send(self, response: Response, *, truncate: bool = False) -> None:
        """The answer (headers only for HEAD); `truncate`: promise it all, send half, hang up."""
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
        if self.command == "HEAD":
            return
        self.wfile.write(response.body[: len(response.body) // 2] if truncate else response.body)
        if truncate:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests: JSON like every other answer, instead of the default HTML page.
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        detail = {"message": message or phrase, "type": "invalid_request_error"}
        body = json.dumps({"error": detail})
        self.send_response(code, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body.encode())
        self.close_connection = True
