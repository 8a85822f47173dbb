"""kling batch after lines went wrong: --retry-failed gives failed lines a new attempt and
leaves the rest alone; a line whose send is uncertain is not a failed line."""

from __future__ import annotations

import json
import sqlite3
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
