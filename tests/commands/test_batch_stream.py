"""kling batch reads its file as the run goes: a window of lines at a time, results still in
line order, every line sent once, lines not read yet still reported on --timeout."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox, SandboxConfig


def write_jsonl(path: Path, rows: list[dict], end: str = "\n") -> Path:
    path.write_bytes("".join(json.dumps(row) + end for row in rows).encode())
    return path


def sends(sandbox: Sandbox) -> Counter[str]:
    return Counter(
        r.json["prompt"]
        for r in sandbox.log
        if r.method == "POST" and r.path == "/v1/videos/generations" and r.status == 200
    )


@pytest.fixture
def small_window(monkeypatch: pytest.MonkeyPatch) -> int:
    from kling_cli.batch import runner

    monkeypatch.setattr(runner, "WINDOW", 3)
    return 3


def test_a_window_of_lines_runs_them_all_in_line_order(
    kling, tmp_path: Path, small_window: int
) -> None:
    """The first line takes longest: the lines after it finish, wait to be printed, and the
    window waits with them; nothing is lost or sent twice."""
    with Sandbox(config=SandboxConfig(queue_seconds=0.02, run_seconds=0.1)) as sb:
        rows = [{"prompt": "[slow] first"}] + [{"prompt": f"line {n}"} for n in range(2, 13)]
        src = write_jsonl(tmp_path / "in.jsonl", rows)
        result = kling(
            "--base-url", sb.base_url, "--api-key", "k" * 20, "--no-progress", "batch",
            str(src), "--interval", "0.05", "--json", "-o", str(tmp_path / "out"), "-p", "4",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert [json.loads(doc)["line"] for doc in result.stdout.splitlines()] == list(range(1, 13))
        assert sends(sb) == Counter(row["prompt"] for row in rows)
        assert len(list((tmp_path / "out").glob("*.mp4"))) == 12


def test_timeout_reports_the_lines_never_read(kling, against, tmp_path: Path, small_window) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"[slow] {n}"} for n in range(8)])
    result = kling(
        "--no-progress", "batch", str(src), "--interval", "0.05", "--timeout", "0.5", "-p", "2"
    )
    assert result.exit_code == 7, result.stderr
    assert [row.split("\t")[0] for row in result.stdout.splitlines()] == [
        str(n) for n in range(1, 9)
    ]
    assert "batch: 8 lines: 8 not finished\n" in result.stderr


def test_windows_line_ends_and_blank_lines(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}, {"prompt": "a cat"}], "\r\n\n")
    result = kling("--no-progress", "batch", str(src), "--interval", "0.1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(doc)["line"] for doc in result.stdout.splitlines()] == [1, 3]


def test_a_line_that_is_not_utf8_is_a_usage_error(kling, against, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"prompt": "ok"}\n{"prompt": "\xff"}\n')
    result = kling("batch", str(src))
    assert result.exit_code == 2
    assert "line 2 is not UTF-8 text" in result.stderr and "Traceback" not in result.stderr
    assert against.log == []


def test_a_file_changed_while_it_runs_stops_with_a_usage_error(
    kling, against, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_window
) -> None:
    """Lines are read again as the run takes them, and checked again: lines added, removed or
    broken since the first reading stop the run (what was sent stays recorded)."""
    from kling_cli.batch import runner

    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"fox {n}"} for n in range(10)])
    feed = runner.Runner.feed

    def editing_feed(self: runner.Runner) -> bool:
        more = feed(self)
        if self.entered >= 3 and "broken" not in src.read_text():
            src.write_text(src.read_text().replace('"fox 8"', '"fox 8" "broken'))
        return more

    monkeypatch.setattr(runner.Runner, "feed", editing_feed)
    result = kling("--no-progress", "batch", str(src), "--interval", "0.05", "-p", "1")
    assert result.exit_code == 2
    # (which line it notices depends on how much of the file was read ahead)
    assert "the batch file changed while it ran (line " in result.stderr
    assert "Traceback" not in result.stderr
    assert all(count == 1 for count in sends(against).values())  # each line read is parsed
    # The lines read before the change were sent, followed to the end and printed.
    assert len(result.stdout.splitlines()) == len(sends(against)) >= 3
    assert all("\tcompleted\t" in row for row in result.stdout.splitlines())


def test_a_file_cut_short_while_it_runs_stops_with_a_usage_error(
    kling, against, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_window
) -> None:
    """Lines cut off the end of the file after the check were left out without a word: exit 0
    and a summary of the lines that were left."""
    from kling_cli.batch import runner

    # Long lines, so that the lines to be cut are not yet read ahead when the file is cut.
    prompts = [f"fox {n} " + "x" * 1500 for n in range(40)]
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": prompt} for prompt in prompts])
    feed = runner.Runner.feed

    def cutting_feed(self: runner.Runner) -> bool:
        more = feed(self)
        if self.entered >= 3 and src.stat().st_size > 50_000:
            src.write_text("".join(src.read_text().splitlines(keepends=True)[:30]))
        return more

    monkeypatch.setattr(runner.Runner, "feed", cutting_feed)
    result = kling("--no-progress", "batch", str(src), "--interval", "0.05", "-p", "1")
    assert result.exit_code == 2, result.stderr
    assert "the batch file changed while it ran (line 31)" in result.stderr
    assert len(sends(against)) == len(result.stdout.splitlines()) <= 30


def test_a_video_saved_but_not_on_record_is_not_fetched_again(
    kling, against, tmp_path: Path, isolated: Path
) -> None:
    """Killed between saving a video and recording it: the re-run finds it where it was
    saved instead of refusing to overwrite it."""
    import sqlite3

    from kling_cli.store.journal import JOURNAL_FILE

    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}, {"prompt": "a cat"}])
    out = tmp_path / "out"
    args = ("--no-progress", "batch", str(src), "-o", str(out), "--interval", "0.1", "-q")
    first = kling(*args)
    assert first.exit_code == 0, first.stderr
    with sqlite3.connect(isolated / JOURNAL_FILE) as db:
        db.execute("UPDATE tasks SET files = '[]'")
    downloads = len([r for r in against.log if r.listener == "files"])
    again = kling(*args)
    assert again.exit_code == 0, again.stderr
    assert sorted(again.stdout.split()) == sorted(first.stdout.split())
    assert len([r for r in against.log if r.listener == "files"]) == downloads
