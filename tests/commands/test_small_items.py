"""The smaller items of the issue "Used as people use it" (item 10), each through the CLI
entry point: a message or an output that said less than it should."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("balance",), "The service's answer, as it came, as JSON on stdout."),
        (("upload",), "One JSON document per file on stdout"),
        (("doctor",), "Every check in one JSON document on stdout."),
        (("config", "list"), "Every key in one JSON document on stdout."),
        (("status",), "One JSON document per task on stdout."),
    ],
)
def test_json_help_says_what_the_documents_are(kling, command: tuple[str, ...], says: str) -> None:
    """`balance --help` and `upload --help` said 'one JSON document per task'."""
    text = " ".join(kling(*command, "--help").stdout.split())
    assert f"--json {says}" in text
    if command != ("status",):
        assert "per task" not in text
