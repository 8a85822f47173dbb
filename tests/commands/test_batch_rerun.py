"""kling batch run again: --retry-failed gives failed lines a new attempt and leaves the rest
alone; a line whose send is uncertain is not a failed line; another -o gets every video."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from kling_cli.sandbox.server import Sandbox
from kling_cli.store.journal import JOURNAL_FILE
from tests.commands.test_batch_identity import batch, sent, write_jsonl


def forget_the_answers(home: Path, business_ids: bool = False) -> None:
    """As if each line's run had been killed while its request was out: sent, no id heard.
    `business_ids`: forget those too, as a kling from before business ids left its lines."""
    with sqlite3.connect(home / JOURNAL_FILE) as db:
        db.execute("UPDATE batch_lines SET task_id = NULL")
        if business_ids:
            db.execute("UPDATE batch_lines SET business_id = NULL")


def test_a_line_sent_without_an_answer_is_found_by_its_business_id(
    kling, against: Sandbox, isolated: Path, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    first = batch(kling, str(src), "--json")
    assert first.exit_code == 0
    forget_the_answers(isolated)
    again = batch(kling, str(src), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["id"] == json.loads(first.stdout)["id"]
    assert sent(against) == ["a fox"]  # looked up, not sent again


def test_a_service_that_does_not_answer_a_lookup_is_not_asked_for_every_line(
    kling, against: Sandbox, isolated: Path, tmp_path: Path
) -> None:
    """Each uncertain line was looked up in turn, each lookup retried for seconds: against a
    service that was down, ten such lines held a re-run up for almost three minutes. One
    lookup without an answer leaves the others for the next run."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"fox {n}"} for n in range(5)])
    assert batch(kling, str(src)).exit_code == 0
    forget_the_answers(isolated)
    against.config.faults, against.config.fault_kinds = 1.0, ["drop_before"]
    down = batch(kling, str(src))
    assert down.exit_code == 5, down.stderr
    assert down.stderr.count("could not be looked for under its business id") == 5
    asked = {r.path for r in against.log if r.method == "GET" and "/kling-" in r.path}
    assert len(asked) == 1, asked  # one line looked up; the four after it not asked
    against.config.faults = 0.0
    up = batch(kling, str(src), "--json")
    assert up.exit_code == 0, up.stderr
    assert sorted(sent(against)) == [f"fox {n}" for n in range(5)]  # found, none sent again


def test_a_line_whose_send_made_no_task_is_sent_again_with_its_business_id(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    """The connection drops before the service reads the request: no task. The run that sent
    it looks its business id up, hears "not found" and stops (it may be slow to appear); the
    re-run looks once more and only then sends it again, under the same business id."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    against.config.faults, against.config.fault_kinds = 1.0, ["drop_before"]
    first = batch(kling, str(src))
    assert first.exit_code == 5, first.stderr
    named = re.findall(r"business id (kling-[0-9a-zT-]+)", first.stderr)
    assert named, first.stderr
    against.config.faults = 0.0
    again = batch(kling, str(src), "--json")
    assert again.exit_code == 0, again.stderr
    posts = [r for r in against.log if r.method == "POST" and r.path.endswith("generations")]
    assert len(posts) == 2 and posts[0].json is None  # the first was never read
    assert posts[1].json["client_business_id"] == named[0]
    lookups = [r for r in against.log if r.method == "GET" and r.path.endswith(named[0])]
    assert lookups, "the re-run looked the line up before sending it again"
    assert against.log.index(lookups[-1]) < against.log.index(posts[1])
    (task,) = against.state.all_tasks()
    assert json.loads(again.stdout)["id"] == task.id


def test_a_line_sent_again_under_its_business_id_leaves_no_uncertain_send(
    kling, against: Sandbox, isolated: Path, tmp_path: Path
) -> None:
    """The attempt the re-run replaced made no task (the service has none under its business
    id): `kling list` shows the line's task, not an `uncertain` send beside it that a user
    would go looking for (the kill test left such rows behind after a SIGKILL that landed
    between a line's mark and its request)."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    against.config.faults, against.config.fault_kinds = 1.0, ["drop_before"]
    assert batch(kling, str(src)).exit_code == 5
    against.config.faults = 0.0
    again = batch(kling, str(src), "--json")
    assert again.exit_code == 0, again.stderr
    listed = kling("list", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(row["id"], row["state"]) for row in rows] == [
        (json.loads(again.stdout)["id"], "completed")
    ]
    (task,) = against.state.all_tasks()
    assert rows[0]["business_id"] == task.business_id


def test_a_line_without_a_business_id_says_where_to_look_not_to_restart(
    kling, against: Sandbox, isolated: Path, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    assert batch(kling, str(src)).exit_code == 0
    forget_the_answers(isolated, business_ids=True)
    result = batch(kling, str(src))
    assert result.exit_code == 5
    assert "line 1 was sent by an earlier run that never heard back" in result.stderr
    assert "kling list" in result.stderr
    assert "--restart" not in result.stderr  # it would pay again for every completed line
    assert sent(against) == ["a fox"]


ROWS = [{"prompt": "a fox"}, {"prompt": "[fail] a cat"}, {"prompt": "a dog"}]


def test_retry_failed_sends_only_the_failed_lines(kling, against: Sandbox, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out"
    first = batch(kling, str(src), "-o", str(out), "--json")
    assert first.exit_code == 6
    again = batch(kling, str(src), "-o", str(out))  # a re-run reports the failure again
    assert again.exit_code == 6 and len(sent(against)) == 3
    retried = batch(kling, str(src), "-o", str(out), "--json", "--retry-failed")
    assert retried.exit_code == 6  # [fail] fails every time
    assert Counter(sent(against)) == Counter({"a fox": 1, "[fail] a cat": 2, "a dog": 1})
    before = {d["line"]: d["id"] for d in map(json.loads, first.stdout.splitlines())}
    after = {d["line"]: d["id"] for d in map(json.loads, retried.stdout.splitlines())}
    assert after[1] == before[1] and after[3] == before[3] and after[2] != before[2]
    # The new attempt is the line's now: a plain re-run follows it, sends nothing.
    assert batch(kling, str(src), "-o", str(out)).exit_code == 6
    assert len(sent(against)) == 4


def test_retry_failed_sends_a_refused_line_again(kling, against: Sandbox, tmp_path: Path) -> None:
    """A request the service refused (400 here: a mode it does not know) made no task."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox", "set": {"mode": "ultra"}}])
    assert batch(kling, str(src)).exit_code == 4
    assert batch(kling, str(src), "--retry-failed").exit_code == 4
    assert sent(against) == ["a fox", "a fox"]


def test_retry_failed_leaves_running_and_unsure_lines(
    kling, against: Sandbox, isolated: Path, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "[slow] a fox"}])
    assert batch(kling, str(src), "--timeout", "0.3").exit_code == 7  # still running
    result = batch(kling, str(src), "--retry-failed")
    assert result.exit_code == 0, result.stderr  # waited for, not sent again
    assert sent(against) == ["[slow] a fox"]
    forget_the_answers(isolated, business_ids=True)
    unsure = batch(kling, str(src), "--retry-failed")
    assert unsure.exit_code == 5
    assert "not sent again, nor by --retry-failed" in unsure.stderr
    assert sent(against) == ["[slow] a fox"]


def test_retry_failed_and_restart_do_not_go_together(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    result = batch(kling, str(src), "--retry-failed", "--restart")
    assert result.exit_code == 2 and "--restart" in result.stderr
    assert sent(against) == []


def downloads(sandbox: Sandbox) -> int:
    return len([r for r in sandbox.log if r.listener == "files"])


def test_a_rerun_into_another_folder_saves_every_video_there(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    """Copied from the earlier folder while it is there, else fetched again; nothing sent."""
    rows = [{"prompt": "a fox"}, {"prompt": "a cat", "output": "cat.mp4"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    videos, other = tmp_path / "videos", tmp_path / "other"
    assert batch(kling, str(src), "-o", str(videos)).exit_code == 0
    fetched = downloads(against)
    result = batch(kling, str(src), "-o", str(other), "--json", "--sidecar")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(doc) for doc in result.stdout.splitlines()]
    saved = [Path(d["output_files"][0]) for d in docs]
    assert [p.parent for p in saved] == [other, other] and saved[1].name == "cat.mp4"
    for path in saved:
        assert path.read_bytes() == (videos / path.name).read_bytes()
        assert json.loads(path.with_suffix(".json").read_text())["video_file"] == path.name
    assert downloads(against) == fetched  # copied
    # Both folders gone: fetched again. Then the same folder again: nothing to do.
    shutil.rmtree(videos)
    shutil.rmtree(other)
    third = tmp_path / "third"
    assert batch(kling, str(src), "-o", str(third)).exit_code == 0
    assert sorted(p.name for p in third.iterdir()) == sorted(
        p.name for p in saved if p.suffix == ".mp4"
    )
    assert downloads(against) == fetched + 2
    again = batch(kling, str(src), "-o", str(third), "-q")
    assert sorted(again.stdout.split()) == sorted(str(p) for p in third.iterdir())
    assert downloads(against) == fetched + 2
    assert sorted(sent(against)) == ["a cat", "a fox"]


def test_stdin_rerun_from_another_folder_into_another_folder(
    kling, against: Sandbox, tmp_path: Path, monkeypatch
) -> None:
    rows = "".join(json.dumps({"prompt": p}) + "\n" for p in ("a fox", "a cat"))
    assert batch(kling, "-", "-o", "videos", input=rows).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = batch(kling, "-", "-o", "new", "-q", input=rows)
    assert result.exit_code == 0, result.stderr
    assert [Path(p).parent for p in result.stdout.split()] == [elsewhere / "new"] * 2
    assert len(list((elsewhere / "new").glob("*.mp4"))) == 2
    assert len(sent(against)) == 2
