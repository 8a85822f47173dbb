"""A hostile HTTP server over raw sockets: each request gets the bytes its route's script says,
exactly (a status line, headers and body a real server would never send), with pauses between
them, then the connection is closed. Requests are recorded as they came.

    with RawServer() as server:
        server.add("GET", "/v1/videos/generations/t", b"HTTP/1.1 200 OK\\r\\n...", 5.0, b"...")
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

Step = bytes | float  # bytes to send, or seconds to wait


@dataclass
class Heard:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def answer(status: str, body: bytes = b"", **headers: str) -> bytes:
    """A well-formed answer, with Content-Length unless a header says otherwise."""
    fields = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",  # as the connection is, after each answer
        **headers,
    }
    head = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in fields.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body


class RawServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.routes: dict[tuple[str, str], deque[list[Step]]] = {}
        self.heard: list[Heard] = []
        self.sent: list[int] = []  # bytes sent for each answer, before the peer went away
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def add(self, method: str, path: str, *script: Step) -> None:
        """The next answer of a route (the last one added answers all the requests after)."""
        self.routes.setdefault((method, path), deque()).append(list(script))

    def seen(self, method: str, path: str) -> list[Heard]:
        with self._lock:
            return [h for h in self.heard if (h.method, h.path) == (method, path)]

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._exchange, args=(conn,), daemon=True).start()

    def _exchange(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            heard = _read_request(conn)
            if heard is None:
                return
            with self._lock:
                self.heard.append(heard)
                queue = self.routes.get((heard.method, heard.path))
                if queue:  # the last script of a route answers every request after it
                    script = queue.popleft() if len(queue) > 1 else queue[0]
                else:
                    script = [answer("404 Not Found", b'{"error":"no"}')]
            sent = 0
            for step in script:
                if isinstance(step, float):
                    if self._stop.wait(step):
                        return
                    continue
                try:
                    conn.sendall(step)
                except OSError:
                    break
                sent += len(step)
            with self._lock:
                self.sent.append(sent)
        finally:
            conn.close()


def _read_request(conn: socket.socket) -> Heard | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("Content-Length", "0"))
    deadline = time.monotonic() + 10
    while len(body) < length and time.monotonic() < deadline:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Heard(method, path, headers, body)
