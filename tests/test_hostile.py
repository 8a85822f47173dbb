"""Hostile answers over raw sockets (the issue "Under attack and under kill", items 1 and 5-8):
each ends in exit 5 with one line (or the JSON error document), never an internal error; a
POST whose answer is unusable is an uncertain send, never sent again; a poll answered for
another task is refused; --timeout bounds a stuck answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.raw_server import RawServer, answer

KEY = "sk-hostile-0123456789abcdef"
TASKS = "/v1/videos/generations"
TASK = b'{"id": "video_a", "status": "in_progress", "progress": 40}'

HOSTILE = {
    "huge length": [b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}"],
    "redirect to port 99999": [answer("302 Found", Location="http://127.0.0.1:99999/x")],
    "redirect to a broken address": [answer("302 Found", Location="http://[::1")],
    "redirect in bytes that are not text": [
        b"HTTP/1.1 302 Found\r\nLocation: http://x/\xff\xfe\r\nContent-Length: 0\r\n\r\n"
    ],
    "negative chunk size": [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n" + b"x" * (1 << 20)
    ],
    "garbage": [b"\x00\xffNOT HTTP AT ALL\r\n\r\n"],
}


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch):
    with RawServer() as server:
        monkeypatch.setenv("KLING_BASE_URL", server.url)
        monkeypatch.setenv("KLING_API_KEY", KEY)
        yield server


def one_error(stderr: str) -> str:
    """The error line, checked to be said once, without an internal error or a traceback."""
    lines = [line for line in stderr.splitlines() if line.startswith("kling: error:")]
    assert len(lines) == 1, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_answer_to_a_poll_is_exit_5_in_one_line(kling, hostile, name: str) -> None:
    hostile.add("GET", f"{TASKS}/video_a", *HOSTILE[name])
    result = kling("status", "video_a")
    assert result.exit_code == 5, result.stderr
    one_error(result.stderr)
    as_json = kling("status", "video_a", "--json")
    (document,) = [json.loads(line) for line in as_json.stderr.splitlines() if line.startswith("{")]
    assert as_json.exit_code == 5 and document["error"]["exit_code"] == 5


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_answer_to_the_generation_post_is_an_uncertain_send(
    kling, hostile, name: str
) -> None:
    hostile.add("POST", TASKS, *HOSTILE[name])
    result = kling("generate", "a fox", "-q")
    assert result.exit_code == 5, result.stderr
    assert "not sent again" in one_error(result.stderr)
    assert len(hostile.seen("POST", TASKS)) == 1  # never again
    listed = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert [(row["status"], row["prompt"]) for row in listed] == [("uncertain", "a fox")]


def test_a_negative_chunk_size_reads_no_more_than_an_answer_can_hold(kling, hostile) -> None:
    endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n" + b"x" * (1 << 20)
    hostile.add("GET", f"{TASKS}/video_a", endless, *[b"y" * (1 << 20)] * 63)  # 64 MiB
    assert kling("status", "video_a").exit_code == 5
    assert hostile.sent and max(hostile.sent) < 40 * (1 << 20)  # the reader stopped at 16 MiB


def test_a_redirect_loop_is_too_many_redirects(kling, hostile) -> None:
    hostile.add("GET", f"{TASKS}/video_a", answer("302 Found", Location=f"{TASKS}/video_a"))
    result = kling("status", "video_a")
    assert result.exit_code == 5 and "too many redirects" in one_error(result.stderr)


def test_a_post_redirected_to_another_host_is_never_posted_there(kling, hostile) -> None:
    with RawServer() as elsewhere:
        hostile.add("POST", TASKS, answer("307 Temporary Redirect", Location=elsewhere.url + "/x"))
        result = kling("generate", "a fox", "-q")
        assert result.exit_code == 5 and len(hostile.seen("POST", TASKS)) == 1
        assert elsewhere.heard == []


def test_a_get_redirected_to_another_host_goes_there_without_the_key(kling, hostile) -> None:
    with RawServer() as elsewhere:
        elsewhere.add("GET", "/t", answer("200 OK", TASK))
        hostile.add("GET", f"{TASKS}/video_a", answer("302 Found", Location=elsewhere.url + "/t"))
        assert kling("status", "video_a", "-q").stdout == "in_progress\n"
        (heard,) = elsewhere.heard
        assert "Authorization" not in heard.headers


def test_an_answer_about_another_task_is_refused_and_never_recorded(kling, hostile) -> None:
    other = b'{"id": "video_OTHER", "status": "completed", "progress": 100}'
    hostile.add("GET", f"{TASKS}/video_a", answer("200 OK", other))
    result = kling("wait", "video_a", "-o", "a.mp4")
    assert result.exit_code == 5 and "video_OTHER" in one_error(result.stderr)
    assert not Path("a.mp4").exists() and "video_OTHER" not in kling("list").stdout


# --- --timeout bounds the whole wait, stuck answers included (real time: a subprocess) --------


def run_kling(
    args: list[str], server: RawServer, home: Path
) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {
        **os.environ,
        "KLING_HOME": str(home),
        "KLING_BASE_URL": server.url,
        "KLING_API_KEY": KEY,
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kling_cli", *args], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    return time.monotonic() - started, done


STUCK = {
    "headers, then nothing": [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 30.0],
    "a byte a second": [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"]
    + [step for _ in range(30) for step in (b"{", 1.0)],
    "a Retry-After of a day": [answer("503 Service Unavailable", b"{}", Retry_After="100000")],
    "a Retry-After in 2099": [
        answer("429 Too Many Requests", b"{}", Retry_After="Thu, 01 Jan 2099 00:00:00 GMT")
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUCK))
def test_timeout_bounds_a_stuck_answer(tmp_path: Path, name: str) -> None:
    with RawServer() as server:
        server.add("GET", f"{TASKS}/video_a", *STUCK[name])
        took, done = run_kling(["wait", "video_a", "--timeout", "2"], server, tmp_path)
    assert done.returncode == 7, done.stderr
    assert took < 8, took  # 2 s, and the start-up of a Python process
    one_error(done.stderr)


@pytest.mark.slow
def test_a_stalled_download_is_a_timeout(tmp_path: Path) -> None:
    with RawServer() as server:
        video = server.url + "/v.mp4"
        done_task = {"id": "video_a", "status": "completed", "progress": 100,
                     "result": {"data": [{"url": video}]}}  # fmt: skip
        server.add("GET", f"{TASKS}/video_a", answer("200 OK", json.dumps(done_task).encode()))
        server.add("GET", "/v.mp4", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc", 30.0)
        args = ["wait", "video_a", "-o", str(tmp_path / "a.mp4"), "--timeout", "2"]
        took, done = run_kling(args, server, tmp_path)
    assert done.returncode == 7, done.stderr
    assert took < 8 and "--timeout" in one_error(done.stderr)
    assert not (tmp_path / "a.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_every_answer_that_came_is_recorded_whatever_another_send_meets(
    kling, hostile, tmp_path: Path
) -> None:
    """Four lines sent side by side; one POST is answered with an unusable redirect: the three
    tasks made are recorded and followed to the end, the fourth is an uncertain send."""
    video = hostile.url + "/v.mp4"
    for n in (1, 2, 4):
        task = {"id": f"video_{n}", "status": "queued"}
        hostile.add("POST", TASKS, 0.3, answer("200 OK", json.dumps(task).encode()))
        if n == 2:  # the third POST to arrive
            hostile.add("POST", TASKS, answer("307 Temporary Redirect", Location="http://[::1"))
        done = {"id": f"video_{n}", "status": "completed", "result": {"data": [{"url": video}]}}
        hostile.add("GET", f"{TASKS}/video_{n}", answer("200 OK", json.dumps(done).encode()))
    hostile.add("GET", "/v.mp4", answer("200 OK", b"\0\0\0\x18ftypmp42"))
    lines = tmp_path / "four.jsonl"
    lines.write_text("".join(f'{{"prompt": "a fox, take {n}"}}\n' for n in range(4)))
    result = kling("batch", str(lines), "-p", "4", "-o", str(tmp_path / "out"))
    assert result.exit_code == 5, result.stderr
    assert "internal error" not in result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert sorted(row[1] for row in rows) == ["-", "video_1", "video_2", "video_4"]
    listed = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert sorted(row["status"] for row in listed) == ["completed"] * 3 + ["uncertain"]
    assert len(hostile.seen("POST", TASKS)) == 4


# --- text from the service stays text -----------------------------------------------------------

FORGED = "\x1b[2J\x1b]0;pwned\x07\r\nkling: fake line\tand a tab \x9b31m"


def test_a_service_message_cannot_forge_output(kling, hostile) -> None:
    failed = {"id": "video_a", "status": "failed", "error": {"message": FORGED}}
    hostile.add("GET", f"{TASKS}/video_a", answer("200 OK", json.dumps(failed).encode()))
    result = kling("status", "video_a")
    assert result.exit_code == 6
    (row,) = result.stdout.splitlines()  # one line: no line break got through
    fields = row.split("\t")
    assert len(fields) == 4 and fields[0] == "video_a"
    assert "\\x1b[2J" in fields[3] and "\\r\\nkling: fake line\\tand a tab \\x9b31m" in fields[3]
    for stream in (result.stdout, result.stderr):
        assert not any(c in stream for c in "\x1b\r\x07\x9b")
    waited = kling("wait", "video_a")
    assert waited.exit_code == 6 and "\x1b" not in waited.stderr
    assert not any(line.startswith("kling: fake line") for line in waited.stderr.splitlines())


def test_a_prompt_with_control_characters_lists_as_text(kling, against) -> None:
    assert kling("generate", "a \x1b[31mred\x1b[0m fox\x00 [red]x[/red]", "-q").exit_code == 0
    (row,) = kling("list").stdout.splitlines()
    prompt = row.split("\t")[4]
    assert prompt == "a \\x1b[31mred\\x1b[0m fox\\x00 [red]x[/red]"


def test_a_prompt_with_a_right_to_left_override_lists_as_text(kling, against) -> None:
    """U+202E reversed everything after it on a terminal (`gpj.exe` read `exe.jpg`); Hebrew
    letters are letters, shown as they are."""
    prompt = "cat \u202egpj.exe \u2067x\u2069 \u05e9\u05dc\u05d5\u05dd"
    assert kling("generate", prompt, "-q").exit_code == 0
    (row,) = kling("list").stdout.splitlines()
    assert row.split("\t")[4] == "cat \\u202egpj.exe \\u2067x\\u2069 \u05e9\u05dc\u05d5\u05dd"


def test_a_service_message_that_echoes_the_key_is_redacted(kling, hostile) -> None:
    refused = {"error": {"message": f"invalid api key: {KEY}", "type": "authentication_error"}}
    hostile.add("GET", f"{TASKS}/video_a", answer("401 Unauthorized", json.dumps(refused).encode()))
    result = kling("status", "video_a", "-v")
    assert result.exit_code == 3
    assert KEY not in result.stderr and "invalid api key: <redacted>" in result.stderr
