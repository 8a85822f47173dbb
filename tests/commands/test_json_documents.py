"""What --json adds (CLI.md): every task document of generate, status, wait, download and
batch carries `kling`, fields of one name and meaning whatever the service's spelling, checked
against the schema kling ships; batch documents and progress events carry `line`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from kling_cli.sandbox.server import Sandbox

SCHEMA = json.loads(
    resources.files("kling_cli").joinpath("schemas/documents.schema.json").read_text()
)
EVENTS = json.loads(
    resources.files("kling_cli").joinpath("schemas/progress-events.schema.json").read_text()
)
FAST = ("--interval", "0.1")


def documents(stdout: str) -> list[dict]:
    docs = [json.loads(line) for line in stdout.splitlines()]
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)
    return docs


@pytest.mark.parametrize(
    ("marker", "state", "status"),
    [
        ("", "completed", "completed"),
        ("[status:succeeded]", "completed", "succeeded"),
        ("[url:videos]", "completed", "completed"),
        ("[status:canceled]", "failed", "canceled"),
        ("[fail-text]", "failed", "failed"),
    ],
)
def test_a_finished_task_in_kling_s_words(
    kling, against: Sandbox, tmp_path: Path, marker: str, state: str, status: str
) -> None:
    out = tmp_path / "v.mp4"
    args = ["generate", f"{marker} a fox", "--business-id", "b-1", "--json", *FAST]
    result = kling(*args, "-o", str(out)) if state == "completed" else kling(*args, "--wait")
    (doc,) = documents(result.stdout)
    fields = doc["kling"]
    assert doc["status"] == status and fields["state"] == state  # the spelling kept, and said
    assert fields["business_id"] == "b-1"
    if state == "completed":
        assert fields["video_url"].startswith("http") and fields["files"] == [str(out.resolve())]
        assert isinstance(fields["expires_at"], int) and fields["error"] is None
    else:
        assert fields["video_url"] is None and fields["files"] == []
        assert fields["error"].startswith("sandbox: the prompt asked")


def test_a_task_still_running_is_queued_or_running(kling, against: Sandbox) -> None:
    task_id = kling("generate", "a fox", "-q").stdout.strip()
    (doc,) = documents(kling("status", task_id, "--json").stdout)
    assert doc["kling"]["state"] == "queued" and doc["kling"]["video_url"] is None
    weird = kling("generate", "[status:weird_state] a fox", "--wait", "--timeout", "1", "--json")
    states = {doc["kling"]["state"] for doc in documents(weird.stdout)}
    assert states <= {"queued", "unknown"}


def test_download_and_status_documents(kling, against: Sandbox, tmp_path: Path) -> None:
    (done,) = documents(kling("generate", "a fox", "--wait", "--json", *FAST).stdout)
    task_id = done["id"]
    (doc,) = documents(kling("download", task_id, "-o", f"{tmp_path}/", "--json").stdout)
    assert doc["kling"]["files"] == [str((tmp_path / f"{task_id}.mp4").resolve())]
    (doc,) = documents(kling("status", task_id, "--json").stdout)
    assert doc["kling"]["state"] == "completed" and doc["kling"]["files"] == []


def test_batch_documents_and_events_name_their_line(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    lines = tmp_path / "two.jsonl"
    lines.write_text('{"prompt": "a fox"}\n\n{"prompt": "[fail] a cat"}\n')
    result = kling(
        "--progress", "json", "batch", str(lines), "-o", str(tmp_path / "out"), "--json", *FAST
    )
    assert result.exit_code == 6
    docs = documents(result.stdout)
    assert [(d["line"], d["kling"]["line"], d["kling"]["state"]) for d in docs] == [
        (1, 1, "completed"),
        (3, 3, "failed"),
    ]
    events = [json.loads(line) for line in result.stderr.splitlines()]
    for event in events:
        jsonschema.validate(event, EVENTS)
    about_tasks = [e for e in events if "task_id" in e]
    assert about_tasks and all(e["line"] in (1, 3) for e in about_tasks)


def test_the_documents_schema_ships_in_the_package() -> None:
    assert SCHEMA["$schema"].endswith("2020-12/schema")
    assert set(SCHEMA["properties"]["kling"]["required"]) == {
        "state", "video_url", "expires_at", "error", "files", "business_id",
    }  # fmt: skip
