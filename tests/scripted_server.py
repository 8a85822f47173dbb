"""A loopback HTTP server that answers each request with the next reply scripted for its route.

It records every request, so a test can check what reached it (headers included), and
`seen()` lists the requests for one route. As gh's httpmock `Verify` (STYLE.md 10), a script
must match what happened: `verify()`, run when the `with` block ends without an exception,
fails the test for a scripted route never called, or a request no scripted reply was left for.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection after reading the request, without answering
    delay: float = 0.0
    send_bytes: int | None = None  # send only this many body bytes (Content-Length stays full)

    def payload(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def self_signed_certificate(folder: Path) -> tuple[Path, Path] | None:
    """(certificate, key) for 127.0.0.1 and localhost, made by openssl; None without it."""
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-answer are part of the tests, not news


S = TypeVar("S", bound="LoopbackServer")


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 and a free port, for `with` blocks in tests."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], tls: tuple[Path, Path] | None = None
    ) -> None:
        self._server = QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # (certificate, key): serve https
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self: S) -> S:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class ScriptedServer(LoopbackServer):
    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.routes: dict[tuple[str, str], deque[Reply]] = {}
        self.requests: list[Seen] = []
        self.unmatched: list[Seen] = []  # answered 404 "not scripted"
        self._lock = threading.Lock()
        super().__init__(self._handler(), tls)

    def add(self, method: str, path: str, *replies: Reply) -> None:
        """Script a route's next replies. Replies left over are fine (a trap for a request that
        must not be repeated); a route never called at all fails `verify()`."""
        self.routes.setdefault((method, path), deque()).extend(replies)

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def verify(self) -> None:
        """Fail for each scripted route never called and each request that found no reply."""
        with self._lock:
            called = {(r.method, r.path) for r in self.requests}
            never = [f"{m} {p}" for m, p in self.routes if (m, p) not in called]
            unmatched = [f"{r.method} {r.path}" for r in self.unmatched]
        problems = [f"scripted but never called: {route}" for route in never]
        problems += [f"called with no scripted reply left: {route}" for route in unmatched]
        if problems:
            raise AssertionError("the server's script does not match:\n  " + "\n  ".join(problems))

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if exc[0] is None:  # a failing block has its own story to tell
            self.verify()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append(
                        Seen(self.command, self.path, dict(self.headers.items()), body)
                    )
                    queue = server.routes.get((self.command, self.path))
                    if queue:
                        reply = queue.popleft()
                    else:
                        server.unmatched.append(server.requests[-1])
                        reply = Reply(404, {"error": "not scripted"})
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = reply.payload()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    sent = payload if reply.send_bytes is None else payload[: reply.send_bytes]
                    self.wfile.write(sent)
                if reply.send_bytes is not None:
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = _serve

        return Handler
