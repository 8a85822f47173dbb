"""kling batch after lines went wrong: --retry-failed gives failed lines a new attempt and
leaves the rest alone; a line whose send is uncertain is not a failed line."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

from kling_cli.sandbox.server import Sandbox
from kling_cli.store.journal import JOURNAL_FILE


def batch(kling, *args: str, **kw):
    return kling("--no-progress", "batch", *args, "--interval", "0.1", **kw)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def sent(sandbox: Sandbox) -> list[str]:
    return [
        r.json["prompt"]
        for r in sandbox.log
        if r.method == "POST" and r.path == "/v1/videos/generations"
    ]


def forget_the_answers(home: Path) -> None:
    """As if each line's run had been killed while its request was out: sent, no id heard."""
    with sqlite3.connect(home / JOURNAL_FILE) as db:
        db.execute("UPDATE batch_lines SET task_id = NULL")


def test_a_line_sent_without_an_answer_says_where_to_look_not_to_restart(
    kling, against: Sandbox, isolated: Path, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    assert batch(kling, str(src)).exit_code == 0
    forget_the_answers(isolated)
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
    forget_the_answers(isolated)
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
