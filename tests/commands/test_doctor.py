"""kling doctor through the entry point, against the sandbox over real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox

KEY = "sk-test-0123456789abcdef"


def checks(result) -> dict[str, dict[str, str]]:
    """The --json document's checks by name (the document must parse and say ok or not)."""
    document = json.loads(result.stdout)
    assert document["ok"] is (result.exit_code == 0)
    assert all(set(c) == {"name", "status", "detail", "hint"} for c in document["checks"])
    return {c["name"]: c for c in document["checks"]}


def statuses(result) -> dict[str, str]:
    return {name: c["status"] for name, c in checks(result).items()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_a_healthy_setup_is_all_ok(kling, against: Sandbox) -> None:
    result = kling("doctor", "--json")
    assert result.exit_code == 0, result.stdout
    assert statuses(result) == dict.fromkeys(
        ["config", "key", "base_url", "proxies", "journal", "output"], "ok"
    )
    key = checks(result)["key"]["detail"]
    assert "from KLING_API_KEY" in key and "accepted" in key and "sk-...cdef" in key
    assert KEY not in result.stdout + result.stderr  # masked, never whole
    assert against.base_url in checks(result)["base_url"]["detail"]
    asked = [r for r in against.log if r.path == "/v1/balance"]
    assert [r.headers.get("Authorization") for r in asked] == [None, "<redacted>"]


def test_plain_lines_when_piped(kling, against: Sandbox) -> None:
    result = kling("doctor")
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[:2] for row in rows] == [
        ["ok", "config"], ["ok", "key"], ["ok", "base_url"], ["ok", "proxies"],
        ["ok", "journal"], ["ok", "output"],
    ]  # fmt: skip
    assert all(len(row) == 4 for row in rows)
    assert result.stderr.endswith("0 problems, 0 warnings\n")


def test_the_built_in_sandbox_needs_no_key(kling) -> None:
    result = kling("--sandbox", "doctor", "--json")
    assert result.exit_code == 0, result.stdout
    assert "the sandbox" in checks(result)["key"]["detail"]


def test_no_key_is_a_problem_exit_3(kling, sandbox: Sandbox) -> None:
    result = kling("doctor", "--json", env={"KLING_BASE_URL": sandbox.base_url})
    assert result.exit_code == 3
    key = checks(result)["key"]
    assert key["status"] == "problem" and "kling config set api_key" in key["hint"]
    assert statuses(result)["base_url"] == "ok"


def test_a_key_the_service_does_not_know_is_exit_3(kling, against: Sandbox) -> None:
    against.config.unknown_keys.add(KEY)
    result = kling("doctor", "--json")
    assert result.exit_code == 3
    key = checks(result)["key"]
    assert key["status"] == "problem" and "does not know this API key" in key["detail"]


def test_a_revoked_key_is_exit_3(kling, against: Sandbox) -> None:
    against.config.revoked_keys.add(KEY)
    result = kling("doctor")
    assert result.exit_code == 3
    row = next(line.split("\t") for line in result.stdout.splitlines() if "\tkey\t" in line)
    assert row[0] == "problem" and "HTTP 401" in row[2] and "revoked" in row[3]
    assert KEY not in result.stdout + result.stderr


def test_an_unreachable_service_is_exit_5(kling) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = kling("doctor", "--json", env={"KLING_BASE_URL": url, "KLING_API_KEY": KEY})
    assert result.exit_code == 5
    found = checks(result)
    assert found["base_url"]["status"] == "problem"
    assert "cannot connect" in found["base_url"]["detail"] and url in found["base_url"]["detail"]
    # The key is there but could not be asked about: a warning, not a second problem.
    assert found["key"]["status"] == "warning" and "not checked" in found["key"]["detail"]


def test_a_service_without_the_balance_endpoint_is_a_warning(kling, tmp_path: Path) -> None:
    from tests.scripted_server import Reply, ScriptedServer

    with ScriptedServer() as server:  # a gateway without the balance endpoint
        not_found = Reply(404, {"error": {"message": "no such endpoint"}})
        server.add("GET", "/v1/balance", not_found, not_found)
        result = kling("doctor", "--json", env={"KLING_BASE_URL": server.url, "KLING_API_KEY": KEY})
    assert result.exit_code == 0, result.stdout
    key = checks(result)["key"]
    assert key["status"] == "warning" and "404" in key["detail"]


def test_a_certificate_the_machine_does_not_trust_is_a_tls_problem(
    kling, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.scripted_server import Reply, ScriptedServer, self_signed_certificate

    tls = self_signed_certificate(tmp_path)
    if tls is None:
        pytest.skip("openssl is not installed")
    with ScriptedServer(tls=tls) as server:
        server.add("GET", "/v1/balance", Reply(401), Reply(200, {"remain_balance": 5}))
        env = {"KLING_BASE_URL": server.url, "KLING_API_KEY": KEY}
        result = kling("doctor", "--json", env=env)
        assert result.exit_code == 5
        found = checks(result)["base_url"]
        assert "TLS failed" in found["detail"] and "REQUESTS_CA_BUNDLE" in found["hint"]
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))  # as for a proxy's own CA
        trusted = kling("doctor", "--json", env=env)
    assert trusted.exit_code == 0, trusted.stdout
    assert "TLS ok" in checks(trusted)["base_url"]["detail"]


def test_a_damaged_journal_is_a_problem_with_the_way_out(
    kling, against: Sandbox, isolated: Path
) -> None:
    isolated.mkdir(mode=0o700)
    journal = isolated / "journal.sqlite3"
    journal.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    result = kling("doctor", "--json")
    assert result.exit_code == 2
    found = checks(result)["journal"]
    assert found["status"] == "problem" and "damaged" in found["detail"]
    assert f"mv {journal} {journal}.damaged" in found["hint"]
    assert journal.read_bytes().startswith(b"this is not")  # looked at, not touched


def test_a_journal_with_tasks_is_counted(kling, against: Sandbox) -> None:
    assert kling("generate", "a fox", "-q").exit_code == 0
    assert kling("generate", "a cat", "-q").exit_code == 0
    detail = checks(kling("doctor", "--json"))["journal"]["detail"]
    assert "2 tasks" in detail and "integrity ok" in detail


def test_a_config_file_others_can_read_is_a_problem_when_it_holds_the_key(
    kling, sandbox: Sandbox, isolated: Path
) -> None:
    isolated.mkdir(mode=0o700)
    path = isolated / "config.toml"
    path.write_text(f'api_key = "{KEY}"\nbase_url = "{sandbox.base_url}"\n')
    path.chmod(0o644)
    result = kling("doctor", "--json")
    assert result.exit_code == 2
    found = checks(result)
    assert found["config"]["status"] == "problem" and "0644" in found["config"]["detail"]
    assert found["config"]["hint"] == f"chmod 600 {path}"
    assert "from the config file" in found["key"]["detail"] and found["key"]["status"] == "ok"
    path.chmod(0o600)
    assert kling("doctor").exit_code == 0


def test_unknown_keys_and_a_broken_file(kling, against: Sandbox, isolated: Path) -> None:
    isolated.mkdir(mode=0o700)
    path = isolated / "config.toml"
    path.write_text('moed = "pro"\n')
    path.chmod(0o600)
    result = kling("doctor", "--json")
    assert result.exit_code == 0  # a warning is fine
    assert checks(result)["config"]["status"] == "warning"
    assert "unknown key 'moed'" in checks(result)["config"]["detail"]
    assert "did you mean 'mode'?" in checks(result)["config"]["detail"]
    path.write_text("mode = \n")
    broken = kling("doctor", "--json")
    assert broken.exit_code == 2 and "not valid TOML" in checks(broken)["config"]["detail"]
    assert checks(broken)["key"]["status"] == "ok"  # the other checks still ran
    path.write_text('mode = "fast"\n')
    bad = checks(kling("doctor", "--json", env={"KLING_DURATION": "7"}))["config"]
    assert bad["status"] == "problem" and "must be one of std, pro" in bad["detail"]
    assert "kling config set" in bad["hint"]


def test_a_key_from_a_profile_says_so(kling, sandbox: Sandbox, isolated: Path) -> None:
    isolated.mkdir(mode=0o700)
    path = isolated / "config.toml"
    path.write_text(f'[profiles.work]\napi_key = "{KEY}"\nbase_url = "{sandbox.base_url}"\n')
    path.chmod(0o600)
    result = kling("--profile", "work", "doctor", "--json")
    assert result.exit_code == 0, result.stdout
    assert "from profile work" in checks(result)["key"]["detail"]


def test_an_output_folder_that_cannot_be_written(
    kling, against: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As tests/commands/test_config.py: the tests run as root, who writes anywhere, so the
    refusal a read-only folder gives is made where the check asks."""
    import tempfile

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    result = kling("doctor", "--json")
    assert result.exit_code == 2
    found = checks(result)["output"]
    assert found["status"] == "problem" and "Permission denied" in found["detail"]
    assert "output_dir" in found["hint"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_output_folder(kling, against: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    try:
        result = kling("doctor", "--json", env={"KLING_OUTPUT_DIR": str(folder)})
    finally:
        folder.chmod(0o700)
    assert result.exit_code == 2 and checks(result)["output"]["status"] == "problem"


def test_an_output_folder_under_a_file_cannot_be_made(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("x")
    result = kling("doctor", "--json", env={"KLING_OUTPUT_DIR": str(tmp_path / "a-file" / "v")})
    assert result.exit_code == 2
    assert "is not a folder" in checks(result)["output"]["detail"]


def test_an_output_folder_yet_to_be_made_is_fine(kling, against: Sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "new" / "videos"
    result = kling("doctor", "--json", env={"KLING_OUTPUT_DIR": str(folder)})
    assert result.exit_code == 0
    assert "will be made" in checks(result)["output"]["detail"] and not folder.exists()


def test_a_proxy_in_effect_is_named_without_its_password(
    kling, against: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://me:secret@127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "example.org")
    for name in ("http_proxy", "no_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    remote = {"KLING_BASE_URL": "https://api.kling.test"}
    result = kling("doctor", "--json", env=remote)
    proxies = checks(result)["proxies"]
    assert "http://me:***@127.0.0.1:9" in proxies["detail"] and "secret" not in result.stdout
    # ... and the requests go through it: nothing listens there, so the service is unreachable.
    assert result.exit_code == 5 and "proxy" in checks(result)["base_url"]["detail"]
    # A loopback base URL (the sandbox here) never goes through a proxy.
    monkeypatch.setenv("KLING_BASE_URL", against.base_url)
    direct = kling("doctor", "--json")
    assert direct.exit_code == 0 and "directly" in checks(direct)["proxies"]["detail"]


def test_plain_http_to_another_host_is_refused(kling) -> None:
    result = kling(
        "doctor", "--json", env={"KLING_BASE_URL": "http://example.com", "KLING_API_KEY": KEY}
    )
    assert result.exit_code == 2
    found = checks(result)
    assert found["config"]["status"] == "problem"  # found as the setting it is
    assert "plain http:// to example.com" in found["config"]["detail"]
    assert "https://" in found["config"]["detail"]
    assert "KLING_API_KEY" in found["key"]["detail"]  # the other settings still count


def test_against_kling_sandbox_in_another_process(tmp_path: Path) -> None:
    """The way a user runs it: `kling sandbox` in one process, `kling doctor` in another."""
    port = closed_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        server.stdout.readline()  # its URL, once it listens
        env = {
            **os.environ,
            "KLING_BASE_URL": f"http://127.0.0.1:{port}",
            "KLING_API_KEY": "sandbox-key",
        }
        result = subprocess.run(
            [sys.executable, "-m", "kling_cli", "doctor"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "problem" not in result.stdout and "Traceback" not in result.stderr
