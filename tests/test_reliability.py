"""Reliability and security under faults and hostile input, over real loopback sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_cli import download
from kling_cli.api.client import error_message
from kling_cli.store.journal import JOURNAL_FILE, Journal
from tests.scripted_server import Reply, ScriptedServer, self_signed_certificate

KEY = "sk-reliable-0123456789abcdef"
TASKS = "/v1/videos/generations"
CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)


def completed(task_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id, "object": "generation.task", "status": "completed", "progress": 100,
        "result": {"type": "video", "data": [{"url": url}]}, **extra,
    }  # fmt: skip


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    with ScriptedServer() as server:
        monkeypatch.setenv("KLING_BASE_URL", server.url)
        monkeypatch.setenv("KLING_API_KEY", KEY)
        yield server


# --- the key -------------------------------------------------------------------------------


def test_video_host_never_gets_the_key(kling, against, tmp_path: Path) -> None:
    result = kling("generate", "a fox", "-o", str(tmp_path / "f.mp4"), "--interval", "0.1")
    assert result.exit_code == 0, result.stderr
    files = [r for r in against.log if r.listener == "files"]
    api = [r for r in against.log if r.listener == "api"]
    assert files and not any(r.has_auth for r in files)
    assert api and all(r.has_auth for r in api)


def test_plain_http_to_a_remote_host_is_refused(kling) -> None:
    result = kling("--base-url", "http://api.example.com", "--api-key", KEY, "status", "x")
    assert result.exit_code == 2 and "plain http" in result.stderr
    assert KEY not in result.stderr


def test_key_never_in_errors_or_traces(kling, api: ScriptedServer) -> None:
    api.add("GET", f"{TASKS}/t", Reply(401, {"error": {"message": "invalid key"}}))
    result = kling("--verbose", "status", "t")
    assert result.exit_code == 3
    assert KEY not in result.stderr + result.stdout and "<redacted>" in result.stderr


# --- downloads -----------------------------------------------------------------------------


def test_expired_url_is_refreshed_from_the_service(
    kling, api: ScriptedServer, tmp_path: Path
) -> None:
    old = completed("t", api.url + "/old.mp4", expires_at=int(time.time()) - 10)
    api.add("GET", f"{TASKS}/t", Reply(200, old), Reply(200, completed("t", api.url + "/new.mp4")))
    api.add("GET", "/new.mp4", Reply(200, CLIP, {"Content-Type": "video/mp4"}))
    result = kling("download", "t", "-o", str(tmp_path / "v.mp4"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "v.mp4").read_bytes() == CLIP
    assert api.seen("GET", "/old.mp4") == []  # expired by its own word: not even tried


def test_url_refused_by_video_host_is_refreshed(kling, api: ScriptedServer, tmp_path: Path) -> None:
    api.add(
        "GET", f"{TASKS}/t",
        Reply(200, completed("t", api.url + "/a.mp4")),
        Reply(200, completed("t", api.url + "/b.mp4")),
    )  # fmt: skip
    api.add("GET", "/a.mp4", Reply(403, "<Error>AccessDenied</Error>"))
    api.add("GET", "/b.mp4", Reply(200, CLIP))
    assert kling("download", "t", "-o", str(tmp_path / "v.mp4")).exit_code == 0
    assert (tmp_path / "v.mp4").read_bytes() == CLIP


DISK_FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
from kling_cli.main import main
main(sys.argv[1:])
"""


def test_disk_full_is_a_clear_error_and_leaves_nothing(api: ScriptedServer, tmp_path: Path) -> None:
    api.add("GET", f"{TASKS}/t", Reply(200, completed("t", api.url + "/v.mp4")))
    api.add("GET", "/v.mp4", Reply(200, CLIP))
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL, "download", "t", "-o", str(out / "v.mp4")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "KLING_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 8  # a local file that cannot be written (CLI.md)
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


# --- hostile data --------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["../../escape", "/etc/passwd", "a" * 500, "x\\..\\y", ".a"])
def test_task_ids_never_lead_outside_the_folder(
    kling, api: ScriptedServer, tmp_path: Path, task_id: str
) -> None:
    from urllib.parse import quote

    out = tmp_path / "out"
    out.mkdir()
    api.add(
        "GET",
        f"{TASKS}/{quote(task_id, safe='')}",
        Reply(200, completed(task_id, api.url + "/v.mp4")),
    )
    api.add("GET", "/v.mp4", Reply(200, CLIP))
    result = kling("download", task_id, "-o", str(out) + "/", "-q")
    assert result.exit_code == 0, result.stderr
    saved = Path(result.stdout.strip())
    assert saved.parent == out.resolve() and saved.read_bytes() == CLIP


@pytest.mark.parametrize("task_id", ["..", ".", ""])
def test_dot_task_ids_are_refused(kling, api: ScriptedServer, task_id: str) -> None:
    result = kling("status", task_id)
    assert result.exit_code == 2 and api.requests == []


@pytest.mark.parametrize(
    "task",
    [
        {"id": "t", "status": "in_progress", "progress": "50%"},
        {"id": "t", "progress": 10},
        {"id": "t", "status": "completed", "result": ["not", "a", "dict"]},
        {"id": "t", "status": 7, "progress": None},
        {"id": "t", "status": "failed", "error": ["odd"]},
    ],
)
def test_odd_task_shapes_never_traceback(kling, api: ScriptedServer, task: dict[str, Any]) -> None:
    api.add("GET", f"{TASKS}/t", Reply(200, task))
    result = kling("status", "t")
    assert result.exit_code in (0, 6)
    assert "Traceback" not in result.stderr and result.stdout.startswith("t\t")


def test_deeply_nested_json_is_unreadable_not_a_crash(kling, api: ScriptedServer) -> None:
    api.add("GET", f"{TASKS}/t", *[Reply(200, "[" * 100_000 + "]" * 100_000)])
    result = kling("status", "t")
    assert result.exit_code == 5 and "unreadable" in result.stderr
    assert "Traceback" not in result.stderr


def test_huge_json_is_handled(kling, api: ScriptedServer) -> None:
    task = {"id": "t", "status": "queued", "noise": ["x" * 100] * 100_000}  # ~10 MB
    api.add("GET", f"{TASKS}/t", Reply(200, task))
    assert kling("status", "t", "-q").stdout == "queued\n"


def test_unknown_status_keeps_polling(kling, api: ScriptedServer) -> None:
    api.add(
        "GET", f"{TASKS}/t",
        Reply(200, {"id": "t", "status": "rendering"}),
        Reply(200, {"id": "t", "status": "Upscaling"}),
        Reply(200, completed("t", "https://cdn.example/v.mp4")),
    )  # fmt: skip
    result = kling("wait", "t", "--interval", "0.05")
    assert (
        result.exit_code == 0 and result.stdout == "t\tcompleted\t100%\thttps://cdn.example/v.mp4\n"
    )
    assert "rendering" in result.stderr and "upscaling" in result.stderr.lower()


@given(st.binary(max_size=300), st.sampled_from(["", "application/json", "text/html"]))
def test_error_body_parsing_is_total(body: bytes, content_type: str) -> None:
    message, _code = error_message(body, content_type, "Reason")
    assert message and "\n" not in message and len(message) <= 300


@given(st.text())
def test_file_names_are_always_safe(task_id: str) -> None:
    name = download.safe_filename(task_id)
    assert name.endswith(".mp4") and "/" not in name and "\x00" not in name
    assert not name.startswith(".") and len(name.encode()) < 255


# --- interrupts ----------------------------------------------------------------------------


STOPPING = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]


def run_and_interrupt(
    args: list[str], env: dict[str, str], when, sig: int = signal.SIGINT
) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not when() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("sig", "status"), STOPPING)
def test_ctrl_c_during_download_leaves_no_file(
    api: ScriptedServer, tmp_path: Path, sig: int, status: int
) -> None:
    """Ctrl-C, and SIGTERM and SIGHUP as Ctrl-C is: no .part file left, 128 + the signal."""
    api.add("GET", f"{TASKS}/t", Reply(200, completed("t", api.url + "/v.mp4")))
    api.add("GET", "/v.mp4", Reply(200, CLIP, delay=5))
    out = tmp_path / "out"
    out.mkdir()
    env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": api.url, "KLING_API_KEY": KEY}
    result = run_and_interrupt(
        ["download", "t", "-o", str(out / "v.mp4")], env, lambda: api.seen("GET", "/v.mp4"), sig
    )
    assert result.returncode == status and "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status"), STOPPING)
def test_ctrl_c_during_submit_waits_for_the_id_and_keeps_it(
    api: ScriptedServer, tmp_path: Path, sig: int, status: int
) -> None:
    api.add("POST", TASKS, Reply(200, {"id": "t", "status": "queued"}, delay=2))
    env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": api.url, "KLING_API_KEY": KEY}
    result = run_and_interrupt(
        ["generate", "a fox", "-o", "fox.mp4"], env, lambda: api.seen("POST", TASKS), sig
    )
    assert result.returncode == status
    assert "resume with: kling wait t -o fox.mp4" in result.stderr
    assert Journal(tmp_path / JOURNAL_FILE).get("t") is not None  # the paid task is kept
    assert len(api.seen("POST", TASKS)) == 1


@pytest.mark.parametrize(("sig", "status"), STOPPING)
def test_a_signal_before_the_command_handles_signals_keeps_its_own_status(
    tmp_path: Path, sig: int, status: int
) -> None:
    """batch asks for the balance before its first send, outside the part of the run that
    explains an interrupt: typer ends a KeyboardInterrupt there with 130 whatever the signal,
    and a SIGTERM once said 130 (a cancelled CI job looked like a Ctrl-C)."""
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a fox"}\n')
    with Sandbox(config=SandboxConfig(latency=60)) as sb:  # every answer held a minute
        env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": sb.base_url, "KLING_API_KEY": KEY}
        result = run_and_interrupt(
            ["--no-progress", "batch", str(src)], env,
            lambda: any(r.path.endswith("/balance") for r in sb.log), sig,
        )  # fmt: skip
        assert [r.path for r in sb.log] == ["/v1/balance"]  # stopped there: nothing sent
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_ctrl_c_during_submit_says_the_task_may_exist(
    api: ScriptedServer, tmp_path: Path
) -> None:
    api.add("POST", TASKS, Reply(200, {"id": "t", "status": "queued"}, delay=5))
    env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": api.url, "KLING_API_KEY": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "generate", "a fox", "--business-id", "ctrl-c-2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not api.seen("POST", TASKS) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)  # two Ctrl-C, not one: a busy machine may be slow to run Python's handler
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "may have made the task" in err and "kling status ctrl-c-2" in err
    assert err.count("kling: error:") == 1 and "nothing was submitted" not in err
    assert len(api.seen("POST", TASKS)) == 1
    # ... and the hint is true: the send is listed, under its business id.
    listed = subprocess.run(
        [sys.executable, "-m", "kling_cli", "list", "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=30,
    )  # fmt: skip
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["state"]) == ("ctrl-c-2", "uncertain")


def test_ctrl_c_during_a_stalled_submit_that_gives_up_says_once_the_task_may_exist(
    tmp_path: Path,
) -> None:
    """The send stalls; Ctrl-C waits for it (up to 30 s), and meanwhile it gives up (here
    at --timeout, else at the read timeout) with its answer lost: one message, that the task
    may exist, naming its business id; not that and "nothing was submitted" as well."""
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    with Sandbox(config=SandboxConfig(latency=60)) as sb:  # every answer held a minute
        env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": sb.base_url, "KLING_API_KEY": KEY}
        result = run_and_interrupt(
            ["generate", "a fox", "--wait", "--timeout", "3", "--business-id", "stalled-1"],
            env, lambda: any(r.method == "POST" for r in sb.log),
        )  # fmt: skip
        assert [r.method for r in sb.log if r.method == "POST"] == ["POST"]
    err = result.stderr
    assert result.returncode == 130, err
    assert err.count("kling: error:") == 1, err
    assert "may have made the task" in err and "kling status stalled-1" in err
    assert "nothing was submitted" not in err and "Traceback" not in err
    listed = subprocess.run(
        [sys.executable, "-m", "kling_cli", "list", "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=30,
    )  # fmt: skip
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["state"]) == ("stalled-1", "uncertain")


def test_ctrl_c_during_upload(api: ScriptedServer, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    api.add(
        "POST", "/v1/uploads/images", Reply(200, {"success": True, "data": {"url": "x"}}, delay=5)
    )
    env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": api.url, "KLING_API_KEY": KEY}
    result = run_and_interrupt(
        ["generate", "a fox", "-i", str(image)], env, lambda: api.seen("POST", "/v1/uploads/images")
    )
    assert result.returncode == 130 and "nothing was submitted" in result.stderr
    assert api.seen("POST", TASKS) == []


def test_journal_consistent_after_interrupted_wait(sandbox, tmp_path: Path) -> None:
    env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": sandbox.base_url, "KLING_API_KEY": KEY}
    result = run_and_interrupt(
        ["generate", "[slow] a fox", "--wait", "--interval", "0.1"], env,
        lambda: sum(r.method == "GET" for r in sandbox.log) >= 2,
    )  # fmt: skip
    assert result.returncode == 130
    listed = subprocess.run(
        [sys.executable, "-m", "kling_cli", "list", "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=30,
    )  # fmt: skip
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (
        entry["status"] in ("queued", "in_progress")
        and f"kling wait {entry['id']}" in result.stderr
    )


def test_unwritable_journal_never_loses_the_task_id(kling, against, isolated: Path) -> None:
    (isolated / "journal.sqlite3").mkdir(parents=True)  # cannot be opened as a database
    result = kling("generate", "a fox", "-q")
    assert result.exit_code == 0
    task_id = result.stdout.strip()
    assert task_id.startswith("video_")
    assert f"{task_id} was submitted but not recorded" in result.stderr
    listed = kling("list")
    assert listed.exit_code == 8 and "journal" in listed.stderr and "Traceback" not in listed.stderr


# --- proxies -------------------------------------------------------------------------------


def test_a_loopback_api_is_never_reached_through_a_proxy(kling, against, monkeypatch) -> None:
    """The key goes over plain http only to this machine: no proxy variable sends it (or the
    prompt) anywhere else, as NO_PROXY would have it for loopback."""
    from tests.forward_proxy import ForwardProxy

    with ForwardProxy() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.url)
        task_id = kling("generate", "a fox", "-q").stdout.strip()
        assert kling("status", task_id).exit_code == 0
        assert kling("wait", task_id, "-o", "fox.mp4", "--interval", "0.1").exit_code == 0
        assert proxy.seen == []
    assert next(r.method for r in against.log if r.listener == "api") == "POST"


def test_a_proxy_carries_the_video_from_another_host_without_the_key(
    kling, api: ScriptedServer, tmp_path: Path, monkeypatch
) -> None:
    from tests.forward_proxy import ForwardProxy

    with ScriptedServer() as videos, ForwardProxy(hosts={"videos.example": "127.0.0.1"}) as proxy:
        port = videos.url.rsplit(":", 1)[1]
        url = f"http://videos.example:{port}/v.mp4"
        api.add("GET", f"{TASKS}/t", Reply(200, completed("t", url)))
        videos.add("GET", "/v.mp4", Reply(200, CLIP))
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = kling("download", "t", "-o", str(tmp_path / "t.mp4"))
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "t.mp4").read_bytes() == CLIP
        assert proxy.seen == [f"GET {url}"]
        assert "Authorization" not in proxy.headers[0]


def test_https_certificate_is_checked_against_requests_ca_bundle(
    kling, tmp_path: Path, monkeypatch
) -> None:
    """A certificate no known CA vouches for is refused before anything is sent; a company's
    CA given in REQUESTS_CA_BUNDLE (as for any requests-based tool) is trusted."""
    tls = self_signed_certificate(tmp_path)
    if tls is None:
        pytest.skip("openssl is not installed")
    task = {"id": "t", "status": "in_progress", "progress": 40}
    with ScriptedServer(tls=tls) as api:
        api.add("GET", f"{TASKS}/t", Reply(200, task))
        where = ("--base-url", api.url, "--api-key", KEY)
        refused = kling(*where, "status", "t")
        assert refused.exit_code == 5 and "TLS error" in refused.stderr, refused.stderr
        assert api.requests == []
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
        trusted = kling(*where, "status", "--json", "t")
    assert trusted.exit_code == 0, trusted.stderr
    assert json.loads(trusted.stdout)["progress"] == 40
    assert api.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_second_ctrl_c_exits_at_once(api: ScriptedServer, tmp_path: Path) -> None:
    api.add("GET", f"{TASKS}/t", Reply(200, completed("t", api.url + "/v.mp4")))
    api.add("GET", "/v.mp4", Reply(200, CLIP, delay=10))
    env = {"KLING_HOME": str(tmp_path), "KLING_BASE_URL": api.url, "KLING_API_KEY": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "download", "t", "-o", str(tmp_path / "v.mp4")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not api.seen("GET", "/v.mp4") and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    # Both may land at once (one Ctrl-C: exit 130). Once the run is over, Ctrl-C is ignored
    # (test below); in the few instructions before that a second one ends Python by the
    # signal itself, which a shell shows as 130 too.
    assert proc.returncode in (130, -signal.SIGINT)
    assert time.monotonic() - started < 6  # the download takes 10 s
    assert not (tmp_path / "v.mp4").exists()


AFTER_THE_RUN = """
import os, signal, sys, time
from kling_cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
os.kill(os.getpid(), signal.SIGINT)  # a late Ctrl-C, while Python would be shutting down
time.sleep(0.1)
print("exit", code)
"""


def test_a_ctrl_c_after_the_run_leaves_its_exit_code_alone(tmp_path: Path) -> None:
    """A second Ctrl-C that lands after kling said how the run ended must not turn its exit
    code (130 after a first Ctrl-C, or any other) into death by SIGINT."""
    argv = ["--sandbox", "generate", "a fox", "--dry-run"]
    env = {**os.environ, "KLING_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", AFTER_THE_RUN, *argv],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "exit 0"


NO_PERMISSION = """
import os, sys
os.setgid(65534)
os.setuid(65534)  # nobody: root would write anywhere, so the check could never fire
sys.path[:0] = sys.argv[1:3]
from kling_cli.main import main
main(sys.argv[3:])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_no_permission_is_a_clear_error_before_anything_is_sent(
    api: ScriptedServer, tmp_path: Path
) -> None:
    import shutil
    import sysconfig
    import tempfile

    system_python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system_python.exists():
        pytest.skip(f"no {system_python} that another user may run")
    repo = Path(__file__).resolve().parent.parent
    packages = sysconfig.get_paths()["purelib"]  # this venv's site-packages: readable by all
    home = Path(tempfile.mkdtemp(prefix="kling-nobody-"))
    home.chmod(0o777)
    locked = home / "locked"
    locked.mkdir(mode=0o755)  # owned by root: nobody may not write here
    env = {
        "KLING_HOME": str(home / "kling"),
        "KLING_BASE_URL": api.url,
        "KLING_API_KEY": KEY,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [str(system_python), "-c", NO_PERMISSION, str(repo), packages,
         "download", "t", "-o", str(locked / "v.mp4")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    shutil.rmtree(home, ignore_errors=True)
    assert result.returncode == 2, result.stderr
    assert "permission denied" in result.stderr and "Traceback" not in result.stderr
    assert api.requests == []


def test_https_proxy_carries_https_traffic(kling, monkeypatch) -> None:
    from tests.forward_proxy import ForwardProxy

    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        result = kling("--base-url", "https://api.kling.test", "--api-key", KEY, "status", "t")
    assert proxy.seen and all(s == "CONNECT api.kling.test:443" for s in proxy.seen)
    assert result.exit_code == 5 and "Traceback" not in result.stderr
