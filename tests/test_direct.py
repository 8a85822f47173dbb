"""direct.py, the cheap path for the API's GETs (polls), over real loopback sockets: one
keep-alive connection per thread, the answer shapes it reads itself, and what it hands to
transport.py (a retried status, a redirect, a try that got no answer) counting as transport's
first try. ScriptedServer cannot send some shapes (chunked, a body to the close, garbage):
RawServer below writes the exact bytes given."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from kling_cli import __version__
from kling_cli.client import Client
from kling_cli.clock import FakeClock
from kling_cli.direct import usable
from kling_cli.errors import ServiceUnavailable
from kling_cli.sandbox.server import Sandbox, SandboxConfig
from tests.forward_proxy import ForwardProxy
from tests.scripted_server import Reply, ScriptedServer, self_signed_certificate

KEY = "sk-secret-abcdef0123456789"
TASK = {"id": "t", "object": "generation.task", "status": "queued", "progress": 0}
POLL = "/v1/videos/generations/t"
BODY = json.dumps(TASK).encode()


@pytest.fixture(autouse=True)
def no_proxy_or_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct path is off with a proxy in the environment, and checks certificates
    against a CA bundle named there (CI machines often set REQUESTS_CA_BUNDLE): the tests
    here set them only where they mean to."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name)


def client_for(url: str, **kw: Any) -> Client:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", (2.0, 2.0))
    return Client(url, KEY, **kw)


def went_direct(headers: dict[str, str]) -> bool:
    """requests always asks for gzip; direct.py asks for plain bodies (no Accept-Encoding)."""
    return "accept-encoding" not in {name.lower() for name in headers}


# --- a server that writes exact bytes ------------------------------------------------------------


@dataclass
class Raw:
    data: bytes
    then: str = "keep"  # "end": stop writing (a body to the close), still listen; "close": hang up


def ok(*extra: str, body: bytes = BODY) -> Raw:
    """A 200 with a Content-Length, and `extra` header lines."""
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", *extra]
    return Raw(("\r\n".join([*head, f"Content-Length: {len(body)}", "", ""])).encode() + body)


@dataclass
class Request:
    line: str
    headers: dict[str, str]


class RawServer:
    """Answers the requests on 127.0.0.1 with `answers` in turn, a thread per connection.
    `late`: requests sent on a connection after an answer that ended it (a client's bug)."""

    def __init__(self, *answers: Raw) -> None:
        self.answers = deque(answers)
        self.requests: list[Request] = []
        self.late: list[Request] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self._threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # a request sent before this is read all the same (`late`)
        self._threads[0].join(5)  # no connection is accepted after this
        for thread in self._threads[1:]:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(5)
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        ended = False
        with sock, sock.makefile("rb") as reader, contextlib.suppress(OSError):
            while self._readable(sock) and (request := _read_request(reader)) is not None:
                with self._lock:
                    (self.late if ended else self.requests).append(request)
                    answer = self.answers.popleft() if self.answers and not ended else None
                if answer is None:
                    return
                sock.sendall(answer.data)
                if answer.then == "close":
                    return
                if answer.then == "end":
                    sock.shutdown(socket.SHUT_WR)
                    ended = True

    def _readable(self, sock: socket.socket) -> bool:
        """Whether a request (or the end) came before the test ended. The clients here send
        one request at a time, so nothing is left in the reader's buffer."""
        while not self._stop.is_set():
            if select.select([sock], [], [], 0.02)[0]:
                return True
        return bool(select.select([sock], [], [], 0)[0])


def _read_request(reader: BinaryIO) -> Request | None:
    try:
        line = reader.readline().decode().rstrip()
        headers = {}
        while (header := reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode().partition(":")
            headers[name.strip()] = value.strip()
    except OSError:
        return None
    return Request(line, headers) if line and header else None


def polls(server: RawServer, count: int, **kw: Any) -> list[str]:
    client = client_for(server.url, **kw)
    try:
        return [client.get_task("t").status for _ in range(count)]
    finally:
        client.close()


# --- 1, 2: one keep-alive connection, and the answer shapes read on it ---------------------------


def test_polls_reuse_one_connection_and_send_the_api_headers() -> None:
    with RawServer(ok(), ok(), ok()) as server:
        assert polls(server, 3) == ["queued"] * 3
    assert server.connections == 1 and len(server.requests) == 3
    for request in server.requests:
        assert request.line == f"GET {POLL} HTTP/1.1"
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"] == f"kling-cli/{__version__}"
        assert request.headers["Host"] == server.url.removeprefix("http://")
        assert went_direct(request.headers)


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (BODY[:7], BODY[7:]))
    + b"0\r\nX-Trailer: yes\r\n\r\n"
)


@pytest.mark.parametrize(
    ("first", "connections"),
    [
        (Raw(CHUNKED), 1),  # the body ends in the answer: the connection stays
        (Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + BODY, "end"), 2),
        (ok("Connection: close"), 2),  # kept open by this server: a client that reused it...
        (Raw(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)), 2),
    ],
    ids=["chunked", "to-the-close", "connection-close", "http-1.0"],
)
def test_answer_shapes_and_whether_the_connection_is_kept(first: Raw, connections: int) -> None:
    with RawServer(first, ok()) as server:
        assert polls(server, 2) == ["queued"] * 2
    # ...would have had its second poll answered on it, or sent it there in vain (`late`).
    assert server.connections == connections and len(server.requests) == 2
    assert server.late == []
    assert all(went_direct(request.headers) for request in server.requests)


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_retry() -> None:
    notes: list[str] = []
    with RawServer(Raw(ok().data, "close"), ok()) as server:
        assert polls(server, 2, notice=notes.append) == ["queued"] * 2
    assert notes == [] and server.connections == 2 and len(server.requests) == 2
    assert all(went_direct(request.headers) for request in server.requests)


def test_the_host_header_never_carries_userinfo() -> None:
    with RawServer(ok()) as server:
        client = client_for(server.url.replace("//", "//user:pw@"))
        assert client.get_task("t").status == "queued"
        client.close()
    assert server.requests[0].headers["Host"] == server.url.removeprefix("http://")


# --- 4, 5: what is handed to transport counts as its first try -----------------------------------


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def test_a_503_then_200_makes_two_requests_and_one_notice(scripted: ScriptedServer) -> None:
    scripted.add("GET", POLL, Reply(503, {"error": "busy"}), Reply(200, TASK))
    notes: list[str] = []
    assert client_for(scripted.url, notice=notes.append).get_task("t").id == "t"
    seen = scripted.seen("GET", POLL)
    assert len(seen) == 2 and went_direct(seen[0].headers) and not went_direct(seen[1].headers)
    assert len(notes) == 1 and "answered 503 Service Unavailable" in notes[0]


def test_retry_after_of_a_direct_answer_is_honoured(scripted: ScriptedServer) -> None:
    scripted.add("GET", POLL, Reply(503, {"error": "x"}, {"Retry-After": "1"}), Reply(200, TASK))
    clock = FakeClock()
    assert client_for(scripted.url, sleep=clock.sleep).get_task("t").id == "t"
    assert clock.slept == [1.0] and len(scripted.seen("GET", POLL)) == 2


def test_a_redirect_to_another_origin_is_followed_without_the_key(
    scripted: ScriptedServer,
) -> None:
    with ScriptedServer() as other:
        other.add("GET", POLL, Reply(200, TASK))
        scripted.add("GET", POLL, Reply(302, b"", {"Location": other.url + POLL}))
        assert client_for(scripted.url).get_task("t").id == "t"
    first = scripted.seen("GET", POLL)[0].headers
    assert went_direct(first) and first["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in other.requests[0].headers


GARBAGE = Raw(b"SPAM SPAM SPAM\r\n\r\n", "close")
CUT_SHORT = Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + BODY, "close")


@pytest.mark.parametrize("bad", [GARBAGE, CUT_SHORT], ids=["garbage", "cut-short"])
def test_a_broken_answer_is_retried_by_transport(bad: Raw) -> None:
    notes: list[str] = []
    with RawServer(bad, ok()) as server:
        assert polls(server, 1, notice=notes.append) == ["queued"]
    assert len(server.requests) == 2 and went_direct(server.requests[0].headers)
    assert len(notes) == 1 and "(connection broken)" in notes[0]


@pytest.mark.parametrize("bad", [GARBAGE, CUT_SHORT], ids=["garbage", "cut-short"])
def test_only_broken_answers_end_as_connection_broken(bad: Raw) -> None:
    with RawServer(bad, bad, bad, bad) as server, pytest.raises(ServiceUnavailable) as info:
        polls(server, 1, retries=2)
    assert "connection broken" in info.value.message
    assert len(server.requests) == 3  # the direct try and two retries


# --- 6: when the direct path is not used ---------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "environ", "expected"),
    [
        ("https://api.example/v1", {}, True),
        ("https://api.example/v1", {"HTTPS_PROXY": "http://p:1"}, False),
        ("https://api.example/v1", {"https_proxy": "http://p:1"}, False),
        ("https://api.example/v1", {"ALL_PROXY": "socks5://p:1"}, False),
        ("https://api.example/v1", {"HTTP_PROXY": "http://p:1"}, True),  # not for https
        ("https://api.example/v1", {"HTTPS_PROXY": ""}, True),
        ("https://api.example/v1", {"REQUESTS_CA_BUNDLE": "/no/such/ca.pem"}, False),
        ("https://api.example/v1", {"CURL_CA_BUNDLE": "/no/such/ca.pem"}, False),
        ("https://api.example/v1", {"REQUESTS_CA_BUNDLE": "/"}, True),  # a folder is one
        ("http://127.0.0.1:1/v1", {"HTTP_PROXY": "http://p:1"}, False),
        ("http://127.0.0.1:1/v1", {"http_proxy": "http://p:1"}, False),
        ("http://127.0.0.1:1/v1", {"HTTPS_PROXY": "http://p:1"}, True),  # not for http
        ("http://127.0.0.1:1/v1", {"REQUESTS_CA_BUNDLE": "/no/such/ca.pem"}, True),  # no TLS
    ],
)
def test_usable(api: str, environ: dict[str, str], expected: bool) -> None:
    assert usable(api, environ) is expected


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_a_proxy_in_the_systems_settings_turns_it_off(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On macOS and Windows requests also uses the system's proxy settings (urllib's
    getproxies): so does the choice of path there."""
    import urllib.request

    monkeypatch.setattr("sys.platform", platform)
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {"https": "http://p:1"})
    assert usable("https://api.example/v1", {}) is False
    assert usable("http://127.0.0.1:1/v1", {}) is True  # that proxy is for https only


def test_with_http_proxy_set_polls_go_through_the_proxy(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.add("GET", POLL, Reply(200, TASK), Reply(200, TASK))
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client = client_for(scripted.url)
        assert [client.get_task("t").id for _ in range(2)] == ["t", "t"]
        client.close()
    assert proxy.seen == [f"GET {scripted.url}{POLL}"] * 2


# --- 7: https ------------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    made = self_signed_certificate(tmp_path)
    if made is None:
        pytest.skip("openssl is not installed")
    return made


def test_https_refuses_a_self_signed_certificate_unless_it_is_the_ca_bundle(
    tls: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedServer(tls=tls) as api:
        api.add("GET", POLL, Reply(200, TASK), Reply(200, TASK))
        with pytest.raises(ServiceUnavailable, match="TLS error"):
            client_for(api.url).get_task("t")
        assert api.requests == []
        for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # as requests reads them
            with monkeypatch.context() as patched:
                patched.setenv(variable, str(tls[0]))
                assert client_for(api.url).get_task("t").id == "t"
    assert all(went_direct(request.headers) for request in api.requests)


def test_a_ca_bundle_that_is_not_there_is_transports_to_explain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ServiceUnavailable, match=r"TLS error \(.*missing\.pem"):
        client_for("https://127.0.0.1:9").get_task("t")


def test_https_polls_go_direct_checked_against_certifi(
    tls: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    monkeypatch.setattr(certifi, "where", lambda: str(tls[0]))  # as if a CA in certifi's store
    with ScriptedServer(tls=tls) as api:
        api.add("GET", POLL, Reply(200, TASK), Reply(200, TASK))
        client = client_for(api.url)
        assert [client.get_task("t").id for _ in range(2)] == ["t", "t"]
        client.close()
    assert all(went_direct(request.headers) for request in api.requests)


# --- 8, 9: through the CLI ----------------------------------------------------------------------


def test_status_polls_the_sandbox_directly(kling: Any, against: Sandbox) -> None:
    created = kling("generate", "a fox", "-q")
    assert created.exit_code == 0, created.stderr
    task_id = created.stdout.strip()
    result = kling("status", task_id, "-q")
    assert result.exit_code == 0 and result.stdout.strip() in {"queued", "in_progress"}
    assert went_direct(against.log[-1].headers) and against.log[-1].has_auth


def test_status_in_a_fresh_process_never_imports_requests(tmp_path: Path) -> None:
    with Sandbox(config=SandboxConfig()) as sb:
        created = sb.state.create_task({"model": "kling-v3-omni", "prompt": "a fox"})
        assert isinstance(created, dict)
        task_id = created["id"]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "_KLING_"))},
            "KLING_HOME": str(tmp_path),
            "KLING_BASE_URL": sb.base_url,
            "KLING_API_KEY": "k",
        }
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "kling_cli", "status", task_id],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert result.returncode == 0 and task_id in result.stdout, result.stderr
    imported = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines()]
    assert "kling_cli.direct" in imported  # the lines were read right
    assert "requests" not in imported and "urllib3" not in imported


def test_verbose_shows_urllib3_lines_for_a_poll(kling: Any, against: Sandbox) -> None:
    task_id = kling("generate", "a fox", "-q").stdout.strip()
    result = kling("--verbose", "status", task_id)
    assert result.exit_code == 0, result.stderr
    traced = [line for line in result.stderr.splitlines() if "urllib3: " in line]
    assert any(f"GET /v1/videos/generations/{task_id} " in line for line in traced), traced
    assert not went_direct(against.log[-1].headers)
