"""kling sandbox: the simulator in the foreground, used by a second kling process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
