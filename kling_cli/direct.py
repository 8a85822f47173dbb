"""The API's GETs straight over keep-alive sockets: the cheap path for polls.

`wait` on hundreds of tasks makes thousands of polls. Measured on loopback against the sandbox,
one costs ~0.17 ms of CPU through requests and urllib3, ~0.10 ms through http.client, ~0.04 ms
here, and a command that only polls never imports requests (~60 ms of start-up).

It speaks only what the API's answers need: HTTP/1.1 GET on a keep-alive connection per thread,
bodies by Content-Length, chunked, or to the close. Everything else is transport.py's, which has
the rules for it. Not used at all (`usable`) with a proxy in the environment (or in macOS's or
Windows' settings), a CA bundle variable naming nothing, or --verbose's trace. An answer for
transport's rules (a redirect, a status it retries, a compressed body) is handed over as heard
(`Handover.tried`), and so is a try that got no complete answer: either counts as one of
transport's tries, so its retries, their notice and the error's words are the same as on its
own path. TLS is verified as requests verifies it: against REQUESTS_CA_BUNDLE or
CURL_CA_BUNDLE (a file, or a folder of certificates) when set, else certifi's bundle.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Mapping
from io import BufferedReader
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .wire import DEFAULT_TIMEOUT, RETRY_STATUSES, Answer, Failed, Heard

if TYPE_CHECKING:
    import ssl

LINE_LIMIT = 65_536  # bytes in a status or header line
HEADERS_LIMIT = 100
BODY_LIMIT = 16 * 1024 * 1024  # a task's JSON is a few KB: more is not an answer of the API's
PROXY_VARIABLES = ("all_proxy",)  # and `{scheme}_proxy`, in any case
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class Handover(Exception):
    """This GET is transport.py's. `tried`: the try made here, which counts as one of its
    tries: how it went wrong, or the answer of a status it retries. None: no try was spent."""

    def __init__(self, tried: Failed | Heard | None = None):
        super().__init__(tried)
        self.tried = tried


class _Stale(Exception):
    """A kept connection the server had closed while it was idle: no answer began."""


def usable(api: str, environ: Mapping[str, str]) -> bool:
    """Whether the GETs to `api` may take this path: requests would use no proxy for them
    (NO_PROXY is not read: any proxy variable means transport), and a CA bundle the user
    names is there (else transport says what is wrong with it)."""
    scheme = urlsplit(api).scheme
    names = {f"{scheme}_proxy", *PROXY_VARIABLES}
    if any(value and name.lower() in names for name, value in environ.items()):
        return False
    if sys.platform in ("darwin", "win32") and _system_proxy(scheme):
        return False
    bundle = ca_bundle(environ)
    return scheme == "http" or bundle is None or os.path.exists(bundle)


def ca_bundle(environ: Mapping[str, str]) -> str | None:
    """The CA bundle requests verifies against instead of certifi's, if the user names one."""
    return next((environ[name] for name in CA_VARIABLES if environ.get(name)), None)


def _system_proxy(scheme: str) -> bool:
    """A proxy in macOS's or Windows' own settings, which requests reads there too."""
    import urllib.request  # only there: elsewhere its getproxies() is the environment's

    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all"))


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader: BufferedReader = sock.makefile("rb")
        self.used = False  # an answer was read whole on it: it may have gone stale since

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Direct:
    """GETs to one origin (`scheme://host[:port]`), a connection for each thread that asks."""

    def __init__(
        self,
        origin: str,
        user_agent: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca: str | None = None,  # a CA bundle file or folder; None: certifi's
    ):
        parts = urlsplit(origin)
        self.ca = ca
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.timeout = timeout
        host = parts.netloc.rpartition("@")[2]  # a base URL's user:password@ is no host
        self._head = f"Host: {host}\r\nUser-Agent: {user_agent}\r\n"
        self._local = threading.local()
        self._open: set[_Connection] = set()
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None  # made on the first https connection

    def get(self, path: str, headers: Mapping[str, str]) -> Answer:
        """The answer to `GET path`, or Handover."""
        request = self._request(path, headers)
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                return self._exchange(conn, request)
            except _Stale:
                pass  # as urllib3 does: a GET on a kept connection gone stale goes again, once
        conn = self._connect()
        try:
            return self._exchange(conn, request)
        except _Stale:
            raise Handover(Failed.BROKEN) from None

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()

    # --- one exchange ----------------------------------------------------------------------------

    def _request(self, path: str, headers: Mapping[str, str]) -> bytes:
        parts = (path, *headers.keys(), *headers.values())
        if not all(part.isascii() and "\r" not in part and "\n" not in part for part in parts):
            raise Handover()  # transport encodes or refuses such a URL or header in its own way
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return f"GET {path} HTTP/1.1\r\n{self._head}{lines}\r\n".encode("ascii")

    def _exchange(self, conn: _Connection, request: bytes) -> Answer:
        began = False  # a byte of the answer was read: it is no stale connection's
        try:
            conn.sock.sendall(request)
            status_line = conn.reader.readline(LINE_LIMIT + 1)
            began = bool(status_line)
            answer, keep = _read_answer(conn.reader, status_line)
        except BaseException as exc:  # a Ctrl-C too: the connection is midway, never reused
            self._drop(conn)
            if isinstance(exc, (OSError, ValueError, _Broken)):
                if conn.used and not began and not isinstance(exc, TimeoutError):
                    raise _Stale from None
                failed = Failed.READ_TIMEOUT if isinstance(exc, TimeoutError) else Failed.BROKEN
                raise Handover(failed) from None
            raise
        conn.used = True
        if not keep:
            self._drop(conn)
        if not isinstance(answer, Answer):
            raise Handover(answer)
        return answer

    # --- connections -----------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout[0])
        except TimeoutError:
            raise Handover(Failed.CONNECT_TIMEOUT) from None
        except OSError:
            raise Handover(Failed.REFUSED) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                sock = self._tls_wrap(sock)
            sock.settimeout(self.timeout[1])
        except BaseException as exc:
            sock.close()
            if isinstance(exc, TimeoutError):
                raise Handover(Failed.CONNECT_TIMEOUT) from None
            if isinstance(exc, OSError):  # ssl.SSLError (a certificate's too) is one
                raise Handover(Failed.TLS if self.tls else Failed.BROKEN) from None
            raise
        conn = _Connection(sock)
        with self._lock:
            self._open.add(conn)
        self._local.conn = conn
        return conn

    def _drop(self, conn: _Connection) -> None:
        with self._lock:
            self._open.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        conn.close()

    def _tls_wrap(self, sock: socket.socket) -> socket.socket:
        import ssl  # here: plain http (the sandbox) does without its start-up

        with self._lock:
            if self._context is None:
                if self.ca is not None and os.path.isdir(self.ca):
                    self._context = ssl.create_default_context(capath=self.ca)
                else:
                    import certifi  # requests' own trust store: the same CAs on both paths

                    self._context = ssl.create_default_context(cafile=self.ca or certifi.where())
        return self._context.wrap_socket(sock, server_hostname=self.host)


class _Broken(Exception):
    """An answer that does not read as HTTP/1.x."""


def _read_answer(reader: BufferedReader, status_line: bytes) -> tuple[Answer | Heard | None, bool]:
    """The answer whose status line was read, and whether the connection may be kept. Heard:
    an answer for transport's rules (read whole all the same, so the connection stays); None:
    one that is transport's to read (1xx)."""
    version, _, rest = status_line.rstrip(b"\r\n").partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not (version.startswith(b"HTTP/1.") and len(code) == 3 and code.isdigit()):
        raise _Broken  # also an answer cut short, or none at all
    if not status_line.endswith(b"\n"):
        raise _Broken
    status = int(code)
    if status < 200:
        return None, False  # 1xx: what follows is transport's to read
    fields: dict[bytes, bytes] = {}
    for _ in range(HEADERS_LIMIT):
        line = reader.readline(LINE_LIMIT + 1)
        if line in (b"\r\n", b"\n"):
            break
        name, colon, value = line.partition(b":")
        if not colon or not line.endswith(b"\n"):
            raise _Broken  # also a header cut short by the end of the connection
        name = name.strip().lower()
        value = value.strip()
        if name in fields and name != b"content-length":
            value = fields[name] + b", " + value
        elif name in fields and fields[name] != value:
            raise _Broken  # two lengths: which body is it?
        fields[name] = value
    else:
        raise _Broken
    tokens = fields.get(b"connection", b"").lower()
    keep = version == b"HTTP/1.1" and b"close" not in tokens
    if status in (204, 304):
        body = b""
    elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        body = _read_chunked(reader)
    elif b"content-length" in fields:
        length = int(fields[b"content-length"])
        if not 0 <= length <= BODY_LIMIT:
            raise _Broken
        body = reader.read(length)
        if len(body) != length:
            raise _Broken
    else:  # to the close
        body = reader.read(BODY_LIMIT + 1)
        keep = False
    if len(body) > BODY_LIMIT:
        raise _Broken
    words = reason.decode("latin-1").strip()
    encoding = fields.get(b"content-encoding", b"identity").lower()
    if 300 <= status < 400 or status in RETRY_STATUSES or encoding != b"identity":
        named = {name.decode("latin-1"): value.decode("latin-1") for name, value in fields.items()}
        return Heard(status, words, named, body), keep
    content_type = fields.get(b"content-type", b"").decode("latin-1")
    return Answer(status, words, content_type, body), keep


def _read_chunked(reader: BufferedReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = reader.readline(LINE_LIMIT + 1)
        size = int(size_line.split(b";", 1)[0].strip(), 16)  # ValueError: not an answer
        if size == 0:
            break
        total += size
        if total > BODY_LIMIT:
            raise _Broken
        chunk = reader.read(size + 2)
        if len(chunk) != size + 2 or not chunk.endswith(b"\r\n"):
            raise _Broken
        parts.append(chunk[:-2])
    for _ in range(HEADERS_LIMIT):  # trailers, up to the blank line
        line = reader.readline(LINE_LIMIT + 1)
        if line in (b"\r\n", b"\n"):
            return b"".join(parts)
        if not line.endswith(b"\n"):
            raise _Broken
    raise _Broken
