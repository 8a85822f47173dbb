"""A plain static file server on loopback, for the big download (the video host's stand-in)."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .measure import MiB


def make_file(path: Path, size: int) -> Path:
    """`size` bytes of incompressible data (a random MiB repeated), written once."""
    block = os.urandom(MiB)
    with path.open("wb") as fh:
        for offset in range(0, size, MiB):
            fh.write(block[: min(MiB, size - offset)])
        fh.flush()
        # On disk before the first run: its writeback must not overlap (and slow) a measurement.
        os.fsync(fh.fileno())
    return path


class _Handler(BaseHTTPRequestHandler):
    server: StaticServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        path = self.server.files.get(self.path.split("?", 1)[0])
        if path is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if head:
            return
        with path.open("rb") as fh:
            # sendfile(2): the server costs next to no CPU, so the client is what is measured.
            self.connection.sendfile(fh)


class StaticServer(ThreadingHTTPServer):
    """Serves `files` (URL path -> local file) with Content-Length, GET and HEAD only."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, files: dict[str, Path]):
        self.files = files
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def server_bind(self) -> None:  # no reverse DNS lookup of the address
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
