"""kling batch and its files: a batch that cannot record what it sends does not send; sidecars
are ordinary files."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kling_cli.sandbox.server import Sandbox
from kling_cli.store.journal import JOURNAL_FILE, Journal, JournalError

DAMAGED = b"\x00\x01 not sqlite at all " * 200


def write_jsonl(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return path


def sends(sandbox: Sandbox) -> list:
    return [r for r in sandbox.log if r.method == "POST" and r.path == "/v1/videos/generations"]


def test_a_damaged_journal_stops_a_batch_before_it_sends_anything(
    kling, against, isolated: Path, tmp_path: Path
) -> None:
    """Without its journal a batch cannot know what an earlier run sent: it would pay for
    every line again. It stops with the message `kling list` gives, and exit 2."""
    isolated.mkdir()
    path = isolated / JOURNAL_FILE
    path.write_bytes(DAMAGED)
    src = write_jsonl(tmp_path / "in.jsonl", ["a fox", "a cat"])
    result = kling("--no-progress", "batch", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and result.stdout == ""
    assert sends(against) == [] and not (tmp_path / "out").exists()
    assert result.stderr == kling("list").stderr
    assert result.stderr.splitlines() == [
        f"kling: error: the task journal {path} is damaged (file is not a database)",
        f"kling: hint: move it aside and kling starts a new one: mv {path} {path}.damaged",
    ]
    as_json = kling("batch", str(src), "--json")
    error = json.loads(as_json.stderr)["error"]
    assert as_json.exit_code == 2 and error["type"] == "journal" and "mv " in error["hint"]
    assert sends(against) == []
    # Doing what it says works: the batch runs.
    path.rename(f"{path}.damaged")
    assert kling("--no-progress", "batch", str(src), "--interval", "0.1").exit_code == 0
    assert len(sends(against)) == 2


def test_a_journal_that_fails_mid_batch_stops_the_sending(
    kling, against, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line whose "sending" mark cannot be written is not sent (a re-run would send it
    again); nor are the lines after it. What was sent is still followed to the end."""
    real = Journal.sending
    calls = 0

    def fails_second_time(self: Journal, *args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        if calls >= 2:
            raise JournalError(f"the task journal {self.path} failed: disk I/O error")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Journal, "sending", fails_second_time)
    src = write_jsonl(tmp_path / "in.jsonl", ["a fox", "a cat", "a dog"])
    result = kling(
        "--no-progress", "batch", str(src), "-o", str(tmp_path / "out"), "-p", "1",
        "--interval", "0.1", "--json",
    )  # fmt: skip
    assert [r.json["prompt"] for r in sends(against)] == ["a fox"]
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert docs[0]["status"] == "completed" and Path(docs[0]["output_files"][0]).exists()
    for doc in docs[1:]:
        assert doc["error"]["message"].startswith("not sent: the task journal")
    assert result.exit_code == 8  # the journal could not be written (CLI.md)
    assert "disk I/O error; no more requests are sent" in result.stderr


@pytest.fixture
def umask_027() -> Iterator[None]:
    before = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(before)


def test_sidecars_follow_the_umask_like_the_videos(
    kling, against, tmp_path: Path, isolated: Path, umask_027: None
) -> None:
    """A sidecar is no secret: it gets the mode the umask gives any new file, as its video
    does. The config file, which may hold the key, stays 0600."""
    src = write_jsonl(tmp_path / "in.jsonl", ["a fox"])
    out = tmp_path / "out"
    result = kling("--no-progress", "batch", str(src), "-o", str(out), "--sidecar", "-q")
    assert result.exit_code == 0, result.stderr
    video = Path(result.stdout.strip())
    modes = {p.suffix: stat.S_IMODE(p.stat().st_mode) for p in (video, video.with_suffix(".json"))}
    assert modes == {".mp4": 0o640, ".json": 0o640}
    assert kling("config", "set", "mode", "pro").exit_code == 0
    assert stat.S_IMODE((isolated / "config.toml").stat().st_mode) == 0o600


def test_one_line_is_one_line_and_the_live_bar_guesses_nothing(
    kling, against, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ["a fox"])
    result = kling(
        "--progress", "live", "batch", str(src), "-o", str(tmp_path / "out"), "--interval", "0.1"
    )
    assert result.exit_code == 0
    assert "kling: batch: 1 line: 1 completed\n" in result.stderr
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)
    assert "1/1 done" in frames and "?" not in frames  # no `ETA ?`, no `?` speed
    # (the state before a line is done, drawn by hand: tests/test_progress.py)
