"""kling upload and kling list through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


def test_upload_prints_urls(kling, against, tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(PNG)
    b.write_bytes(PNG)
    result = kling("upload", str(a), str(b))
    assert result.exit_code == 0, result.stderr
    urls = result.stdout.split()
    assert len(urls) == 2 and all(u.startswith(against.file_base_url) for u in urls)


def test_upload_json_has_file(kling, against, tmp_path: Path) -> None:
    a = tmp_path / "a.png"
    a.write_bytes(PNG)
    doc = json.loads(kling("upload", str(a), "--json").stdout)
    assert doc["file"] == str(a.resolve()) and doc["url"].startswith("http")


def test_upload_checks_every_file_first(kling, against, tmp_path: Path) -> None:
    a = tmp_path / "a.png"
    a.write_bytes(PNG)
    result = kling("upload", str(a), str(tmp_path / "missing.png"))
    assert result.exit_code == 2 and "missing.png" in result.stderr
    assert against.log == []


def test_upload_rejected_by_service_exits_4(kling, against, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not an image at all")
    result = kling("upload", str(fake))
    assert result.exit_code == 4 and "Bad Request" in result.stderr


def test_list_empty(kling) -> None:
    result = kling("list", "--json")
    assert (result.exit_code, result.stdout) == (0, "")


def test_list_newest_first_with_limit(kling, against) -> None:
    ids = [kling("generate", f"fox {n}", "-q").stdout.strip() for n in range(3)]
    assert kling("list", "-q").stdout.split() == ids[::-1]
    assert kling("list", "-q", "--limit", "2").stdout.split() == ids[:0:-1]
    docs = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert docs[0]["prompt"] == "fox 2" and docs[0]["status"] == "queued"
    plain = kling("list").stdout.splitlines()[0].split("\t")
    assert plain[0] == ids[2] and plain[1] == "queued"


def test_a_long_list_piped_stays_tab_separated(kling, isolated: Path) -> None:
    """Only a terminal gets the aligned lines of a long list: a pipe gets ID<TAB>STATUS<TAB>..."""
    from kling_cli.journal import JOURNAL_FILE, Journal
    from kling_cli.tasks import TaskView

    journal = Journal(isolated / JOURNAL_FILE)
    for n in range(300):
        task = TaskView.of({"id": f"video_{n:03}", "status": "queued"})
        journal.record_submitted(task, "https://api", {"prompt": f"fox  {n}"})
    journal.close()
    lines = kling("list", "-n", "1000", env={"COLUMNS": "100", "LINES": "20"}).stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"video_{n:03}" for n in range(299, -1, -1)]
    assert all(len(line.split("\t")) == 6 for line in lines)
    assert lines[0].split("\t")[1:3] == ["queued", "-"]
    assert lines[0].split("\t")[4] == "fox 299"
