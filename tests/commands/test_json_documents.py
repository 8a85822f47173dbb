"""--json's task documents (CLI.md "Output"): the service's object as it came, plus
`output_files` when videos were saved; batch documents and progress events name their line.
Real output is checked against the schema kling ships."""

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


def as_served(sandbox: Sandbox, task_id: str) -> dict:
    """The task as the service answers it now (a GET of our own, beside kling's)."""
    import urllib.request

    url = f"{sandbox.base_url}/v1/videos/generations/{task_id}"
    ask = urllib.request.Request(url, headers={"Authorization": "Bearer sk-test"})
    with urllib.request.urlopen(ask) as answer:
        return json.load(answer)


@pytest.mark.parametrize(
    "marker", ["", "[status:succeeded]", "[url:videos]", "[status:canceled]", "[fail-text]"]
)
def test_a_finished_task_is_the_service_s_object_as_it_came(
    kling, against: Sandbox, tmp_path: Path, marker: str
) -> None:
    out = tmp_path / "v.mp4"
    completes = marker in ("", "[status:succeeded]", "[url:videos]")
    args = ["generate", f"{marker} a fox", "--business-id", "b-1", "--json", *FAST]
    result = kling(*args, "-o", str(out)) if completes else kling(*args, "--wait")
    (doc,) = documents(result.stdout)
    added = {"output_files": [str(out.resolve())]} if completes else {}
    assert doc == {**as_served(against, doc["id"]), **added}  # nothing else added or changed
    assert doc["client_business_id"] == "b-1"


def test_status_and_download_documents(kling, against: Sandbox, tmp_path: Path) -> None:
    (done,) = documents(kling("generate", "a fox", "--wait", "--json", *FAST).stdout)
    task_id = done["id"]
    assert done == as_served(against, task_id)
    (doc,) = documents(kling("download", task_id, "-o", f"{tmp_path}/", "--json").stdout)
    assert doc["output_files"] == [str((tmp_path / f"{task_id}.mp4").resolve())]
    (doc,) = documents(kling("status", task_id, "--json").stdout)
    assert doc == as_served(against, task_id)


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
    assert [(d["line"], d["status"]) for d in docs] == [(1, "completed"), (3, "failed")]
    events = [json.loads(line) for line in result.stderr.splitlines()]
    for event in events:
        jsonschema.validate(event, EVENTS)
    about_tasks = [e for e in events if "task_id" in e]
    assert about_tasks and all(e["line"] in (1, 3) for e in about_tasks)


def test_the_documents_schema_ships_in_the_package() -> None:
    assert SCHEMA["$schema"].endswith("2020-12/schema")
    assert set(SCHEMA["properties"]) >= {"id", "status", "line", "output_files"}
