"""The journal: records at submit time, updates, newest first, and concurrent writers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kling_cli.api.tasks import TaskView
from kling_cli.store.ids import task_ids
from kling_cli.store.journal import Journal, JournalDamaged, JournalError

view = TaskView.of


def test_record_update_and_files(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.record_submitted(view({"id": "t1", "status": "queued"}), "https://api", {"prompt": "a"})
    journal.record_submitted(view({"id": "t2", "status": "queued"}), "https://api", {"prompt": "b"})
    journal.update(
        view(
            {
                "id": "t1",
                "status": "completed",
                "progress": 100,
                "result": {"data": [{"url": "https://v/1"}]},
            }
        )
    )
    journal.add_file("t1", tmp_path / "t1.mp4")
    journal.update(view({"id": "t2", "status": "failed", "error": {"message": "nope"}}))
    first, second = journal.entries()
    assert first.id == "t2" and first.status == "failed" and first.error == "nope"
    assert second.video_url == "https://v/1" and second.files == [str(tmp_path / "t1.mp4")]
    assert [e.id for e in journal.entries(limit=1)] == ["t2"]
    journal.update(view({"id": "unknown", "status": "completed"}))  # not ours: ignored
    assert journal.get("unknown") is None


WRITER = """
import sys
from pathlib import Path

from kling_cli.store.journal import Journal, JournalDamaged, JournalError
from kling_cli.api.tasks import TaskView
j = Journal(Path(sys.argv[1]))
for n in range(40):
    tid = f"{sys.argv[2]}-{n}"
    j.record_submitted(TaskView.of({"id": tid, "status": "queued"}), "https://api", {"prompt": tid})
    j.update(TaskView.of({"id": tid, "status": "in_progress", "progress": 10}))
"""


def test_task_ids_for_a_tab(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    for task_id, status in [
        ("t1", "queued"),
        ("t2", "in_progress"),
        ("t3", "Running 50%"),
        ("x;rm -rf ~", "queued"),
        ("..", "queued"),
        ("t4", "queued"),
    ]:
        journal.record_submitted(view({"id": task_id, "status": status}), "https://api", {})
    journal.sending("https://api", {"client_business_id": "b1"}, "no answer")
    assert task_ids(journal, "") == [
        ("t4", "queued"),
        ("t3", ""),
        ("t2", "in_progress"),
        ("t1", "queued"),
    ]
    assert task_ids(journal, "t", given={"t4", "t2"}, limit=1) == [("t3", "")]
    assert task_ids(journal, "x;") == [] and task_ids(journal, "attempt-") == []
    journal.close()


def test_an_existing_journal_is_opened_as_it_is(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "j.sqlite3"
    with pytest.raises(JournalError):
        Journal.existing(missing, timeout=0.1)
    assert not missing.parent.exists()
    (tmp_path / "empty.sqlite3").write_bytes(b"")  # a file, but no schema is run on it
    journal = Journal.existing(tmp_path / "empty.sqlite3", timeout=0.1)
    with pytest.raises(JournalError, match="no such table"):
        task_ids(journal, "")
    journal.close()
    assert (tmp_path / "empty.sqlite3").read_bytes() == b""
    (tmp_path / "damaged.sqlite3").write_bytes(b"x" * 4096)
    journal = Journal.existing(tmp_path / "damaged.sqlite3", timeout=0.1)
    with pytest.raises(JournalDamaged):
        task_ids(journal, "")
    journal.close()


def test_a_status_change_is_seen_by_another_process_at_once(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    other = Journal(tmp_path / "j.sqlite3")  # another process's view (`kling list`)
    journal.record_submitted(view({"id": "t1", "status": "queued"}), "https://api", {})
    journal.update(view({"id": "t1", "status": "running"}))
    assert other.get("t1").status == "running"
    journal.add_file("t1", tmp_path / "t1.mp4")
    entry = other.get("t1")
    assert (entry.status, entry.files) == ("running", [str(tmp_path / "t1.mp4")])


@pytest.mark.slow
def test_eight_processes_lose_no_record(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{w}"], stderr=subprocess.PIPE)
        for w in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    entries = Journal(path).entries()
    assert len(entries) == 8 * 40
    assert {e.status for e in entries} == {"in_progress"}


def test_a_journal_from_an_earlier_kling_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "j.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, submitted_at REAL NOT NULL,"
        " updated_at REAL NOT NULL, base_url TEXT NOT NULL, params TEXT NOT NULL,"
        " status TEXT NOT NULL, progress INTEGER, video_url TEXT,"
        " files TEXT NOT NULL DEFAULT '[]', error TEXT);"
        "INSERT INTO tasks VALUES"
        " ('old', 1, 1, 'https://api', '{}', 'completed', 100, NULL, '[]', NULL);"
    )
    old.commit()
    old.close()
    journal = Journal(path)
    journal.record_submitted(view({"id": "new", "status": "queued"}), "https://a", {"prompt": "x"})
    assert [e.id for e in journal.entries()] == ["new", "old"]
    assert journal.get("old").task == {"id": "old", "status": "completed"}


# --- a damaged journal (issue 12, item 17) --------------------------------------------------

DAMAGED = {
    "not a database": b"\x00\x01 not sqlite at all " * 200,
    "a damaged database": b"SQLite format 3\x00" + b"\xff\x00garbage" * 500,
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_journal_says_where_it_is_and_what_to_do(kling, isolated, content) -> None:
    from kling_cli.store.journal import JOURNAL_FILE

    isolated.mkdir()
    path = isolated / JOURNAL_FILE
    path.write_bytes(content)
    result = kling("list")
    assert result.exit_code == 2 and result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"kling: error: the task journal {path} is damaged (")
    assert (
        hint == f"kling: hint: move it aside and kling starts a new one: mv {path} {path}.damaged"
    )
    # Doing what it says works.
    path.rename(f"{path}.damaged")
    assert kling("list").exit_code == 0


def test_a_damaged_journal_does_not_stop_a_generation(kling, isolated, against) -> None:
    """The task id is what matters most: it is printed, and the warning says why it is not
    recorded and what to do."""
    from kling_cli.store.journal import JOURNAL_FILE

    isolated.mkdir()
    path = isolated / JOURNAL_FILE
    path.write_bytes(DAMAGED["not a database"])
    result = kling("generate", "a fox", "-q")
    assert result.exit_code == 0 and result.stdout.startswith("video_")
    assert f"the task journal {path} is damaged" in result.stderr
    assert f"mv {path} {path}.damaged" in result.stderr
    assert result.stderr.count("is damaged") == 1
    assert len(against.log) == 1  # sent once, not retried because of the journal
    status = kling("status", result.stdout.strip())
    assert status.exit_code == 0 and status.stderr.count("is damaged") == 1


def test_the_hint_moves_a_left_over_wal_file_too(kling, isolated) -> None:
    from kling_cli.store.journal import JOURNAL_FILE

    isolated.mkdir()
    path = isolated / JOURNAL_FILE
    path.write_bytes(DAMAGED["not a database"])
    Path(f"{path}-wal").write_bytes(b"")
    result = kling("list")
    assert f"mv {path} {path}.damaged; mv {path}-wal {path}-wal.damaged" in result.stderr


@pytest.mark.parametrize("output", [["-q"], ["--json"], ["--wait", "-q"], ["-o", "fox.mp4"]])
def test_a_journal_write_that_fails_after_the_post_still_gives_the_id(
    kling, against, output: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal opens, then the write of the new task fails (disk full): the task is paid
    for, so its id is printed whatever the output, and the command goes on."""
    from kling_cli.store.journal import Journal, JournalError

    def disk_full(self: Journal, *args: object, **kwargs: object) -> None:
        raise JournalError(f"the task journal {self.path} failed: database or disk is full")

    monkeypatch.setattr(Journal, "record_submitted", disk_full)
    result = kling("--no-progress", "generate", "a fox", *output)
    assert result.exit_code == 0, result.stderr
    found = re.search(r"task (\S+) was submitted but not recorded: keep its id", result.stderr)
    assert found is not None and found[1].startswith("video_")
    if output in (["-q"], ["--json"]):  # the id is the result: on stdout, as always
        assert found[1] in result.stdout
    assert "database or disk is full" in result.stderr
    assert len([r for r in against.log if r.method == "POST"]) == 1
