"""kling batch knows a line by what it asks (its request and its occurrence in the file), not
by its number or its file's path: inserting, removing or reordering lines, another path, a
copy, a hard link or stdin with lines added sends only the new lines; `--restart` is the one
way to pay again."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox


def batch(kling, *args: str, **kw):
    return kling("--no-progress", "batch", *args, "--interval", "0.1", **kw)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def write_jsonl(path: Path, rows: list[dict], before: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(before + jsonl(rows))
    return path


def sent(sandbox: Sandbox) -> list[str]:
    """The prompt of every generation request the sandbox received, in order."""
    return [
        r.json["prompt"]
        for r in sandbox.log
        if r.method == "POST" and r.path == "/v1/videos/generations"
    ]


THREE = [{"prompt": "a fox"}, {"prompt": "a cat", "output": "cat.mp4"}, {"prompt": "a dog"}]


@pytest.fixture
def ran_three(kling, against: Sandbox, tmp_path: Path) -> Path:
    """A 3-line file, run once: 3 requests."""
    src = write_jsonl(tmp_path / "in.jsonl", THREE)
    result = batch(kling, str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert len(sent(against)) == 3
    return src


def test_a_line_prepended_sends_only_that_line(
    kling, against: Sandbox, ran_three: Path, tmp_path: Path
) -> None:
    write_jsonl(ran_three, [{"prompt": "a new first line"}, *THREE])
    result = batch(kling, str(ran_three), "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.stderr
    assert sent(against)[3:] == ["a new first line"]
    docs = [json.loads(doc) for doc in result.stdout.splitlines()]
    assert [(d["line"], d["status"]) for d in docs] == [(n, "completed") for n in (1, 2, 3, 4)]


def test_a_blank_line_prepended_sends_nothing(
    kling, against: Sandbox, ran_three: Path, tmp_path: Path
) -> None:
    write_jsonl(ran_three, THREE, before="\n")
    result = batch(kling, str(ran_three), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert len(sent(against)) == 3
    assert [row.split("\t")[0] for row in result.stdout.splitlines()] == ["2", "3", "4"]


def test_lines_reordered_or_removed_send_nothing(
    kling, against: Sandbox, ran_three: Path, tmp_path: Path
) -> None:
    write_jsonl(ran_three, THREE[::-1])
    assert batch(kling, str(ran_three), "-o", str(tmp_path / "out")).exit_code == 0
    write_jsonl(ran_three, THREE[1:])
    assert batch(kling, str(ran_three), "-o", str(tmp_path / "out")).exit_code == 0
    assert len(sent(against)) == 3


def test_the_same_content_at_another_path_sends_nothing(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    """A copy in another folder, its image copied beside it: the image is known by its content,
    not its path, so not even the upload is made again."""
    first = tmp_path / "a"
    first.mkdir()
    (first / "face.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    rows = [*THREE, {"prompt": "<<<image_1>>> waves", "images": ["face.png"]}]
    src = write_jsonl(first / "in.jsonl", rows)
    assert batch(kling, str(src), "-o", str(tmp_path / "out")).exit_code == 0
    assert len(sent(against)) == 4
    uploads = len([r for r in against.log if r.path.endswith("/uploads/images")])
    copy = shutil.copytree(first, tmp_path / "elsewhere" / "b")
    result = batch(kling, str(copy / "in.jsonl"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert len(sent(against)) == 4
    assert len([r for r in against.log if r.path.endswith("/uploads/images")]) == uploads


def test_stdin_with_a_line_appended_sends_only_that_line(
    kling, against: Sandbox, tmp_path: Path
) -> None:
    assert batch(kling, "-", input=jsonl(THREE)).exit_code == 0
    result = batch(kling, "-", input=jsonl([*THREE, {"prompt": "a horse"}]))
    assert result.exit_code == 0, result.stderr
    assert Counter(sent(against)) == Counter(["a fox", "a cat", "a dog", "a horse"])


def test_two_identical_lines_are_two_videos(kling, against: Sandbox, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}, {"prompt": "a fox"}])
    out = tmp_path / "out"
    result = batch(kling, str(src), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(doc) for doc in result.stdout.splitlines()]
    assert len({d["id"] for d in docs}) == 2
    assert len(list(out.glob("*.mp4"))) == 2
    # Run again: nothing; a third one: one more.
    assert batch(kling, str(src), "-o", str(out)).exit_code == 0
    assert sent(against) == ["a fox", "a fox"]
    write_jsonl(src, [{"prompt": "a fox"}] * 3)
    assert batch(kling, str(src), "-o", str(out)).exit_code == 0
    assert sent(against) == ["a fox"] * 3


def test_what_is_saved_and_where_the_service_is_are_part_of_the_request(
    kling, against: Sandbox, ran_three: Path, tmp_path: Path
) -> None:
    """Another `output` name, or another default from the config (the body changes): new
    requests. The same options given explicitly: the same request."""
    rows = [{**THREE[0], "output": "fox.mp4"}, THREE[1], {**THREE[2], "mode": "std"}]
    write_jsonl(ran_three, rows)
    assert batch(kling, str(ran_three), "-o", str(tmp_path / "out")).exit_code == 0
    assert sent(against)[3:] == ["a fox"]  # mode std is the default: the same body
    assert kling("config", "set", "mode", "pro").exit_code == 0
    result = batch(kling, str(ran_three), "-o", str(tmp_path / "out"), "--force")  # cat.mp4
    assert result.exit_code == 0, result.stderr
    assert sorted(sent(against)[4:]) == ["a cat", "a fox"]  # line 3 still says std


def test_restart_pays_again_for_every_line_of_the_file(
    kling, against: Sandbox, ran_three: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = batch(kling, str(ran_three), "-o", str(out), "--restart", "--force")
    assert result.exit_code == 0, result.stderr
    assert Counter(sent(against)) == Counter({"a fox": 2, "a cat": 2, "a dog": 2})
    assert batch(kling, str(ran_three), "-o", str(out)).exit_code == 0
    assert len(sent(against)) == 6


@pytest.mark.parametrize("how", ["hard link", "copy", "the same path"])
def test_a_second_run_of_the_same_file_at_once_is_refused(
    kling, against: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The lock is the file's (its device and inode, its path) and its content's: a hard link
    to the file, or a copy of it, is the same file to run. The second run starts while the
    first is sending (in this process: the pid named is ours)."""
    from kling_cli.batch import runner

    rows = [{"prompt": f"scene {n}"} for n in range(6)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    other = tmp_path / "elsewhere" / "other.jsonl"
    other.parent.mkdir()
    if how == "hard link":
        os.link(src, other)
    elif how == "copy":
        shutil.copyfile(src, other)
    else:
        other = src
    second: list = []
    feed = runner.Runner.feed

    def feed_then_start_another(self: runner.Runner) -> bool:
        more = feed(self)
        if not second:
            second.append(None)  # once: the second run feeds too, if it is not refused
            second[0] = batch(kling, str(other), "-o", str(tmp_path / "out-2"))
        return more

    monkeypatch.setattr(runner.Runner, "feed", feed_then_start_another)
    first = batch(kling, str(src), "-o", str(tmp_path / "out-1"))
    assert first.exit_code == 0, first.stderr
    (refused,) = second
    assert refused.exit_code == 2, refused.stderr
    assert f"another kling (pid {os.getpid()}) is running this batch file" in refused.stderr
    assert Counter(sent(against)) == Counter(row["prompt"] for row in rows)


def test_a_journal_of_an_earlier_kling_still_knows_its_lines(
    kling, against: Sandbox, ran_three: Path, isolated: Path, tmp_path: Path
) -> None:
    """An earlier kling keyed a line by its file's path, its number and its text: such a row
    still stands for that line while the file is unchanged (and --restart forgets it)."""
    import hashlib
    import sqlite3

    from kling_cli.store.journal import JOURNAL_FILE

    with sqlite3.connect(isolated / JOURNAL_FILE) as db:
        for number, row in enumerate(THREE, start=1):
            text = f"{ran_three.resolve()}\0{number}\0{json.dumps(row)}"
            old = hashlib.sha256(text.encode()).hexdigest()
            db.execute("UPDATE batch_lines SET key = ? WHERE line = ?", (old, number))
    out = tmp_path / "out"
    result = batch(kling, str(ran_three), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert len(sent(against)) == 3
    assert all(json.loads(doc)["status"] == "completed" for doc in result.stdout.splitlines())
    assert batch(kling, str(ran_three), "-o", str(out), "--restart", "--force").exit_code == 0
    assert len(sent(against)) == 6
