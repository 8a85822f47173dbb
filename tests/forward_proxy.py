"""A tiny forward HTTP proxy on loopback that records what passes through it."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.scripted_server import LoopbackServer


class ForwardProxy(LoopbackServer):
    """`hosts`: names the proxy resolves itself (name -> address), as a proxy with its own DNS
    does: kling, which never reaches loopback through a proxy, needs a name that is not."""

    def __init__(self, hosts: dict[str, str] | None = None) -> None:
        self.seen: list[str] = []  # "METHOD URL" of every proxied request
        self.headers: list[dict[str, str]] = []  # the headers of each
        self.hosts = hosts or {}
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: simple and enough

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                with proxy._lock:
                    proxy.seen.append(f"{self.command} {self.path}")
                    proxy.headers.append(dict(self.headers.items()))
                target = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                host = proxy.hosts.get(target.hostname or "", target.hostname)
                conn = http.client.HTTPConnection(host, target.port, timeout=30)
                path = target.path + (f"?{target.query}" if target.query else "")
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                self.send_response(resp.status)
                for name, value in resp.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                conn.close()

            def do_CONNECT(self) -> None:
                """An https tunnel: recorded, then refused (no TLS peer here to reach)."""
                with proxy._lock:
                    proxy.seen.append(f"CONNECT {self.path}")
                self.send_response(502, "no tunnels from this test proxy")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = _forward

        return Handler
