"""kling sandbox: the simulator in the foreground, used by a second kling process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path


def start_sandbox(*options: str) -> tuple[subprocess.Popen, str]:
    """`kling sandbox --port 0 OPTIONS...` in the background, and the URL it prints first."""
    server = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "sandbox", "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def test_foreground_sandbox_serves_other_processes(tmp_path: Path) -> None:
    server, base_url = start_sandbox("--queue-seconds", "0.1", "--run-seconds", "0.3")
    try:
        assert base_url.startswith("http://127.0.0.1:")
        env = {**os.environ, "KLING_BASE_URL": base_url, "KLING_API_KEY": "any-key"}
        target = tmp_path / "fox.mp4"
        client = subprocess.run(
            [sys.executable, "-m", "kling_cli", "generate", "a fox", "-o", str(target),
             "--interval", "0.1", "-q"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == str(target)
        assert target.read_bytes()[4:8] == b"ftyp"  # a real MP4
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0
    assert "KLING_BASE_URL" in err and "Traceback" not in err


def test_foreground_sandbox_injects_faults_on_request() -> None:
    import urllib.error
    import urllib.request

    server, base_url = start_sandbox("--faults", "1", "--seed", "3")
    try:
        statuses = []
        for _ in range(6):
            request = urllib.request.Request(
                f"{base_url}/v1/videos/generations/video_X", headers={"Authorization": "Bearer k"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                statuses.append("dropped")
        # Every answer is a fault: never the plain 404 an unknown task gets without them.
        assert 404 not in statuses and statuses
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)


def run_sandbox_command(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_cli", "sandbox", *options],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_port_in_use_is_a_usage_error_with_a_hint() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_sandbox_command("--port", str(port))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"kling: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "--port 0" in lines[1] and "internal error" not in result.stderr


def test_a_host_that_does_not_resolve_is_a_usage_error(kling, monkeypatch) -> None:
    import socket

    from kling_cli.sandbox import server

    def unresolved(host: str, *args: object, **kwargs: object) -> None:
        # What binding to an unknown name raises, without asking a DNS server (no network).
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(server, "run", unresolved)
    result = kling("sandbox", "--host", "nonsense.invalid", "--port", "0")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("kling: error: cannot listen on nonsense.invalid:0: ")
    assert "--host takes an address" in result.stderr and "internal error" not in result.stderr


def test_the_command_takes_the_foreground_pace_from_the_sandbox_defaults(
    kling, monkeypatch
) -> None:
    from kling_cli.sandbox import server
    from kling_cli.sandbox.defaults import FOREGROUND

    configs: list[server.SandboxConfig] = []
    monkeypatch.setattr(server, "run", lambda host, port, config, on_ready: configs.append(config))
    assert kling("sandbox", "--port", "0").exit_code == 0
    assert kling("sandbox", "--port", "0", "--run-seconds", "0.5").exit_code == 0
    paces = [(config.queue_seconds, config.run_seconds) for config in configs]
    assert paces == [FOREGROUND, (FOREGROUND.queue_seconds, 0.5)]
    help_text = " ".join(kling("sandbox", "--help").stdout.split())
    assert f"queued. [default: {FOREGROUND.queue_seconds}" in help_text


def balance_of(base_url: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{base_url}/v1/balance", headers={"Authorization": "Bearer k"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


def test_foreground_sandbox_balance_flags() -> None:
    for options, expected in [
        ((), {"remain_balance": 100.0, "unlimited_quota": False}),
        (("--balance", "2.5"), {"remain_balance": 2.5, "unlimited_quota": False}),
        (("--unlimited",), {"remain_balance": -1, "unlimited_quota": True}),
    ]:
        server, base_url = start_sandbox(*options)
        try:
            answer = balance_of(base_url)
        finally:
            server.send_signal(signal.SIGINT)
            server.communicate(timeout=20)
        assert answer == {"success": True, "used_balance": 0.0, **expected}, options


def test_sandbox_help_lists_the_markers_forms_and_account_flags(kling) -> None:
    result = kling("sandbox", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for word in (
        *("--balance", "--unlimited", "[status:WORD]", "cancelled", "succeed"),
        *("metadata.image_list", "video_list", "<<<element_N>>>", "/v1/balance"),
    ):
        assert word in text, word


def test_sandbox_refuses_a_balance_that_is_no_number(kling) -> None:
    result = kling("sandbox", "--port", "0", "--balance", "nan")
    assert result.exit_code == 2
    assert result.stderr.strip() == "kling: error: balance must be a finite number, not nan"


def test_foreground_sandbox_latency_delays_each_answer() -> None:
    import time

    server, base_url = start_sandbox("--latency", "0.25")
    try:
        started = time.monotonic()
        balance_of(base_url)
        balance_of(base_url)
        assert time.monotonic() - started >= 0.5
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)


def test_sandbox_refuses_a_negative_latency(kling) -> None:
    result = kling("sandbox", "--port", "0", "--latency", "-1")
    assert result.exit_code == 2
    assert "--latency" in result.stderr
