"""The API client over real loopback sockets: error shapes, retries, Retry-After, safe submits."""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from kling_cli.api.client import Client, error_message
from kling_cli.api.urls import api_root
from kling_cli.clock import FakeClock
from kling_cli.errors import (
    APIError,
    ExitCode,
    MissingKeyError,
    ServiceUnavailable,
    SubmitUncertain,
    UsageError,
)
from tests.scripted_server import Reply, ScriptedServer

KEY = "sk-secret-abcdef0123456789"
TASK = {"id": "video_1", "object": "generation.task", "status": "queued", "progress": 0}
SUBMIT = "/v1/videos/generations"


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


def client_for(server: ScriptedServer, **kw) -> Client:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", (2.0, 2.0))
    return Client(server.url, KEY, **kw)


@pytest.mark.parametrize(
    "base",
    ["https://h.example", "https://h.example/", "https://h.example/v1", "https://h.example/v1/"],
)
def test_base_url_with_or_without_v1(base: str) -> None:
    assert api_root(base) == "https://h.example/v1"


def test_get_task_sends_bearer_key(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(200, TASK))
    assert client_for(server).get_task("video_1").raw == TASK
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("status", "body", "headers", "message", "code"),
    [
        (400, {"error": {"message": "bad mode", "type": "invalid_request_error", "code": "x"}}, {},
         "bad mode", ExitCode.REJECTED),
        (401, {"error": "invalid key"}, {}, "invalid key", ExitCode.AUTH),
        (402, {"success": False, "message": "insufficient balance"}, {}, "insufficient balance",
         ExitCode.AUTH),
        (404, {"error": {"message": "task not found"}}, {}, "task not found", ExitCode.REJECTED),
        (413, "Entity Too Large", {"Content-Type": "text/plain"}, "Entity Too Large",
         ExitCode.REJECTED),
    ],
)  # fmt: skip
def test_error_shapes_become_typed_errors(
    server: ScriptedServer, status, body, headers, message, code
) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(status, body, headers))
    with pytest.raises(APIError) as info:
        client_for(server).get_task("video_1")
    assert info.value.status == status
    assert info.value.service_message == message
    assert info.value.exit_code == code


def test_html_proxy_page_is_summarised_after_retries(server: ScriptedServer) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    server.add("GET", f"{SUBMIT}/video_1", *[Reply(502, page, {"Content-Type": "text/html"})] * 3)
    with pytest.raises(APIError) as info:
        client_for(server, retries=2).get_task("video_1")
    assert "502 Bad Gateway" in info.value.message and "<html>" not in info.value.message
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert len(server.seen("GET", f"{SUBMIT}/video_1")) == 3  # the first try and two retries


def test_get_retries_5xx_then_succeeds(server: ScriptedServer) -> None:
    server.add(
        "GET",
        f"{SUBMIT}/video_1",
        Reply(503, {"error": "busy"}),
        Reply(500, "oops"),
        Reply(200, TASK),
    )
    assert client_for(server).get_task("video_1").id == "video_1"
    assert len(server.requests) == 3


def test_retry_after_seconds_is_honoured(server: ScriptedServer) -> None:
    server.add(
        "GET",
        f"{SUBMIT}/video_1",
        Reply(429, {"error": "slow down"}, {"Retry-After": "1"}),
        Reply(200, TASK),
    )
    clock = FakeClock()
    client_for(server, sleep=clock.sleep).get_task("video_1")
    assert clock.slept == [1.0]  # the advised wait, not the backoff's


def test_retry_after_http_date_is_honoured(server: ScriptedServer) -> None:
    when = formatdate(time.time() + 2, usegmt=True)  # second resolution: 1-2 s from now
    server.add(
        "GET",
        f"{SUBMIT}/video_1",
        Reply(429, {"error": "x"}, {"Retry-After": when}),
        Reply(200, TASK),
    )
    clock = FakeClock()
    client_for(server, sleep=clock.sleep).get_task("video_1")
    assert len(clock.slept) == 1 and 0.9 <= clock.slept[0] <= 2.0, clock.slept


def test_submit_is_retried_on_429(server: ScriptedServer) -> None:
    server.add(
        "POST", SUBMIT, Reply(429, {"error": "rate"}, {"Retry-After": "0"}), Reply(200, TASK)
    )
    assert client_for(server).create_task({"prompt": "x"}).id == "video_1"
    assert len(server.seen("POST", SUBMIT)) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_submit_is_never_retried_on_5xx(server: ScriptedServer, status: int) -> None:
    server.add("POST", SUBMIT, Reply(status, {"error": "boom"}), Reply(200, TASK))
    with pytest.raises(SubmitUncertain) as info:  # a gateway may fail after passing it on
        client_for(server).create_task({"prompt": "x"})
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert f"answered {status}: boom" in info.value.message
    assert len(server.seen("POST", SUBMIT)) == 1


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"status": "queued"}'])
def test_a_2xx_answer_without_a_task_id_is_uncertain(server: ScriptedServer, body: bytes) -> None:
    server.add("POST", SUBMIT, Reply(200, body=body))
    with pytest.raises(SubmitUncertain):  # it was accepted: a task may well exist
        client_for(server).create_task({"prompt": "x"})


def test_submit_dropped_after_sending_is_not_resent(server: ScriptedServer) -> None:
    server.add("POST", SUBMIT, Reply(drop=True), Reply(200, TASK))
    with pytest.raises(SubmitUncertain) as info:
        client_for(server).create_task({"prompt": "x"})
    assert info.value.exit_code == ExitCode.UNAVAILABLE
    assert "no second task" in info.value.message
    assert len(server.seen("POST", SUBMIT)) == 1


def test_submit_read_timeout_is_not_resent(server: ScriptedServer) -> None:
    server.add("POST", SUBMIT, Reply(200, TASK, delay=1.5), Reply(200, TASK))
    with pytest.raises(SubmitUncertain):
        client_for(server, timeout=(2.0, 0.5)).create_task({"prompt": "x"})
    # Counted on arrival; a resend would have come before create_task gave up.
    assert len(server.seen("POST", SUBMIT)) == 1


def test_get_dropped_connection_is_retried(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(drop=True), Reply(200, TASK))
    assert client_for(server).get_task("video_1").id == "video_1"


def test_get_with_a_body_cut_short_is_retried(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(200, TASK, send_bytes=10), Reply(200, TASK))
    assert client_for(server).get_task("video_1").id == "video_1"
    assert len(server.seen("GET", f"{SUBMIT}/video_1")) == 2


def test_get_read_timeout_says_so(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(200, TASK, delay=1.0))
    with pytest.raises(ServiceUnavailable, match="no answer in time") as info:
        client_for(server, timeout=(2.0, 0.3), retries=0).get_task("video_1")
    assert info.value.exit_code == ExitCode.UNAVAILABLE


def client_of_a_closed_port() -> Client:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    return Client(f"http://127.0.0.1:{port}", KEY, retries=1, backoff=0.01)


def test_get_from_a_closed_port_says_refused() -> None:
    with pytest.raises(ServiceUnavailable, match="connection refused") as info:
        client_of_a_closed_port().get_task("video_1")
    assert info.value.exit_code == ExitCode.UNAVAILABLE


def test_connection_refused_is_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable, match="connection refused") as info:
        client_of_a_closed_port().create_task({"prompt": "x"})
    assert not isinstance(info.value, SubmitUncertain)
    assert info.value.exit_code == ExitCode.UNAVAILABLE


def test_unreadable_success_body_is_exit_5(server: ScriptedServer) -> None:
    server.add(
        "GET", f"{SUBMIT}/video_1", Reply(200, "<html>hello</html>", {"Content-Type": "text/html"})
    )
    with pytest.raises(ServiceUnavailable, match="unreadable"):
        client_for(server).get_task("video_1")


def test_upload_is_multipart_and_returns_data(server: ScriptedServer, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    data = {"id": "upload_1", "url": "https://files.example/a.png", "mime_type": "image/png"}
    server.add(
        "POST",
        "/v1/uploads/images",
        Reply(502, "bad gateway"),
        Reply(200, {"success": True, "data": data}),
    )
    sent: list[int] = []
    assert client_for(server).upload_image(image, on_bytes=sent.append) == data
    seen = server.seen("POST", "/v1/uploads/images")
    assert len(seen) == 2  # an upload is safe to retry
    assert seen[1].headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="a.png"' in seen[1].body and image.read_bytes() in seen[1].body
    assert sum(sent) >= image.stat().st_size


def test_upload_error_with_success_false(server: ScriptedServer, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    server.add(
        "POST", "/v1/uploads/images", Reply(400, {"success": False, "message": "File Too Large"})
    )
    with pytest.raises(APIError, match="File Too Large") as info:
        client_for(server).upload_image(image)
    assert info.value.exit_code == ExitCode.REJECTED


def test_video_download_never_carries_the_key(server: ScriptedServer) -> None:
    server.add("GET", "/v.mp4", Reply(200, b"mp4", {"Content-Type": "video/mp4"}))
    resp = client_for(server).open_video(server.url + "/v.mp4")
    assert b"".join(resp.iter_content(1024)) == b"mp4"
    assert "Authorization" not in server.requests[0].headers


def test_redirect_to_another_host_drops_the_key(server: ScriptedServer) -> None:
    with ScriptedServer() as other:
        other.add("GET", f"{SUBMIT}/video_1", Reply(200, TASK))
        # Same address, other port: a different origin, as far as credentials go.
        server.add(
            "GET",
            f"{SUBMIT}/video_1",
            Reply(302, b"", {"Location": other.url + f"{SUBMIT}/video_1"}),
        )
        client_for(server).get_task("video_1")
        assert "Authorization" not in other.requests[0].headers


def test_plain_http_refused_for_remote_hosts() -> None:
    with pytest.raises(UsageError, match="plain http"):
        Client("http://api.example.com", KEY)
    Client("http://localhost:9", KEY)  # loopback is fine (the sandbox)


def test_no_key_is_exit_3(server: ScriptedServer) -> None:
    with pytest.raises(MissingKeyError) as info:
        Client(server.url, None).get_task("video_1")
    assert info.value.exit_code == ExitCode.AUTH
    assert server.requests == []


def test_verbose_trace_redacts_the_key(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(200, TASK))
    lines: list[str] = []
    client_for(server, trace=lines.append).get_task("video_1")
    assert any("GET" in line for line in lines)
    assert KEY not in "\n".join(lines)


def test_error_message_of_empty_body_uses_reason() -> None:
    assert error_message(b"", "", "Service Unavailable") == ("Service Unavailable", None)


def test_verbose_trace_shows_retries(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(503, {"error": "busy"}), Reply(200, TASK))
    lines: list[str] = []
    client = client_for(server, trace=lines.append)
    client.get_task("video_1")
    client.close()
    assert any(line.startswith("  retry 1 of 5") and "503" in line for line in lines), lines
    assert KEY not in "\n".join(lines)


# --- the retry notice (issue 12.11): an unreachable host used to mean 16 s of silence -----------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_an_unreachable_host_is_told_once_while_kling_retries(kling) -> None:
    port = closed_port()  # the `kling` fixture's runs wait on a fake clock: no real backoff
    env = {"KLING_BASE_URL": f"http://127.0.0.1:{port}", "KLING_API_KEY": KEY}
    result = kling("status", "task_1", env=env)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stderr.splitlines() == [
        f"kling: could not reach 127.0.0.1:{port} (connection refused or host unreachable); "
        "retrying for up to ~18 s",
        f"kling: error: could not reach 127.0.0.1:{port}: connection refused or host unreachable",
    ]
    # --verbose keeps every retry's details.
    verbose = kling("--verbose", "status", "task_1", env=env)
    assert verbose.stderr.count("retrying for up to") == 1
    assert verbose.stderr.count("kling:   retry ") == 5, verbose.stderr


def test_the_notice_says_how_long_the_default_retries_last() -> None:
    """5 retries with the default backoff sleep 0.5, 1, 2, 4 and 8 s, each plus at most 0.5 s
    of jitter: ~18 s at most, and the notice says so."""
    port = closed_port()
    notes: list[str] = []
    clock = FakeClock()
    client = Client(
        f"http://127.0.0.1:{port}", KEY, notice=notes.append, sleep=clock.sleep, clock=clock.now
    )
    with pytest.raises(ServiceUnavailable):
        client.get_task("video_1")
    assert notes == [
        f"could not reach 127.0.0.1:{port} (connection refused or host unreachable); "
        "retrying for up to ~18 s"
    ]
    assert len(clock.slept) == 5 and 15.5 <= sum(clock.slept) <= 18


def test_a_retried_answer_is_told_once_and_the_request_still_succeeds(
    server: ScriptedServer,
) -> None:
    server.add(
        "GET",
        f"{SUBMIT}/video_1",
        Reply(503, {"error": "busy"}),
        Reply(429, "slow", {"Retry-After": "1"}),
        Reply(200, TASK),
        Reply(200, TASK),
    )
    notes: list[str] = []
    client = client_for(server, notice=notes.append)
    assert client.get_task("video_1").id == "video_1"
    assert client.get_task("video_1").id == "video_1"
    assert len(server.requests) == 4  # what is retried did not change
    host = server.url.split("//")[1].rstrip("/")
    assert notes == [f"{host} answered 503 Service Unavailable; retrying for up to ~1 s"]


def test_a_timeout_counts_in_how_long_the_retries_last(server: ScriptedServer) -> None:
    server.add("GET", f"{SUBMIT}/video_1", Reply(200, TASK, delay=1.0), Reply(200, TASK))
    notes: list[str] = []
    client = client_for(server, timeout=(2.0, 0.6), retries=3, notice=notes.append)
    assert client.get_task("video_1").id == "video_1"
    # Three more tries may each wait out the 0.6 s read timeout, after backoffs of ~0.1 s.
    assert len(notes) == 1
    assert notes[0].endswith("(no answer in time (read timeout)); retrying for up to ~2 s")
