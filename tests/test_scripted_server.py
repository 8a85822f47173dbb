"""The scripted server's own contract (STYLE.md 10): a script that does not match what happened
fails the test, as gh's httpmock `Verify` does."""

from __future__ import annotations

import pytest
import requests

from tests.scripted_server import Reply, ScriptedServer


def test_a_script_that_was_followed_passes() -> None:
    with ScriptedServer() as server:
        server.add("GET", "/a", Reply(200, {"ok": True}), Reply(500))  # the 500: a trap, unused
        assert requests.get(server.url + "/a", timeout=5).json() == {"ok": True}


def test_a_route_never_called_fails() -> None:
    never_called = pytest.raises(AssertionError, match="scripted but never called: POST /b")
    with never_called, ScriptedServer() as server:
        server.add("GET", "/a", Reply(200))
        server.add("POST", "/b", Reply(200))
        requests.get(server.url + "/a", timeout=5)


def test_a_request_without_a_scripted_reply_fails() -> None:
    with pytest.raises(AssertionError) as failure, ScriptedServer() as server:
        server.add("GET", "/a", Reply(200))
        requests.get(server.url + "/a", timeout=5)
        assert requests.get(server.url + "/a", timeout=5).status_code == 404  # used up
        assert requests.get(server.url + "/c", timeout=5).status_code == 404  # never scripted
    message = str(failure.value)
    assert "no scripted reply left: GET /a" in message
    assert "no scripted reply left: GET /c" in message


def test_a_failing_block_keeps_its_own_error() -> None:
    # The block's own error comes out, not the script's complaint on top of it.
    with pytest.raises(KeyError), ScriptedServer() as server:
        server.add("GET", "/a", Reply(200))
        raise KeyError("the test's own failure")
