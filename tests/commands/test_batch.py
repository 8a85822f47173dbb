"""kling batch: checked lines, parallel runs, resume after SIGKILL, no duplicate paid task."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kling_cli.clock import FakeClock
from kling_cli.sandbox.server import Sandbox, SandboxConfig


def batch(kling, *args: str, **kw):
    return kling("--no-progress", "batch", *args, "--interval", "0.1", **kw)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def sends(sandbox: Sandbox) -> list:
    return [r for r in sandbox.log if r.method == "POST" and r.path == "/v1/videos/generations"]


def test_batch_saves_every_video_and_prints_one_document_per_line(
    kling, against, tmp_path: Path
) -> None:
    dog = {"prompt": "a dog", "duration": 10, "mode": "pro", "metadata": {"seed": 1}}
    rows = [
        {"prompt": "a fox"},
        {"prompt": "a cat", "aspect_ratio": "9:16", "output": "cat.mp4"},
        {**dog, "set": {"audio": True}},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out"
    result = batch(kling, str(src), "-o", str(out), "--json", "--sidecar")
    assert result.exit_code == 0, result.stderr
    docs = sorted((json.loads(x) for x in result.stdout.splitlines()), key=lambda d: d["line"])
    assert [d["line"] for d in docs] == [1, 2, 3]
    assert all(d["status"] == "completed" for d in docs)
    assert Path(docs[1]["output_files"][0]) == out / "cat.mp4"
    assert (out / "cat.mp4").read_bytes() == against.clip_bytes("9:16")
    first = Path(docs[0]["output_files"][0])
    assert first.name == f"0001-{docs[0]['id']}.mp4"
    sidecar = json.loads(first.with_suffix(".json").read_text())
    assert sidecar["task_id"] == docs[0]["id"] and sidecar["prompt"] == "a fox"
    bodies = {r.json["prompt"]: r.json for r in sends(against)}
    assert bodies["a dog"]["duration"] == 10 and bodies["a dog"]["audio"] is True
    assert bodies["a dog"]["metadata"] == {"seed": 1}
    assert "3 completed" in result.stderr


def test_bad_lines_all_reported_and_nothing_sent(kling, against, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"prompt": "ok"}\n{"promt": "typo"}\nnot json\n\n'
        '{"prompt": "<<<image_2>>> x", "images": ["https://x/a.png"]}\n'
        '{"prompt": "x", "duration": "5"}\n{"prompt": "x", "output": "../evil.mp4"}\n'
        '{"prompt": "x", "images": ["missing.png"]}\n'
    )
    result = batch(kling, str(src))
    assert result.exit_code == 2
    for number in (2, 3, 5, 6, 7, 8):
        assert f"line {number}:" in result.stderr
    assert "line 1:" not in result.stderr and "line 4:" not in result.stderr
    assert against.log == []


def test_rerun_sends_nothing_twice_and_restart_does(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"fox {n}"} for n in range(3)])
    out = tmp_path / "out"
    assert batch(kling, str(src), "-o", str(out)).exit_code == 0
    assert len(sends(against)) == 3
    again = batch(kling, str(src), "-o", str(out), "-q")
    assert again.exit_code == 0 and len(sends(against)) == 3
    assert sorted(again.stdout.split()) == sorted(str(p) for p in out.iterdir())
    # An edited line is a new line: only it goes out.
    write_jsonl(src, [{"prompt": "fox 0"}, {"prompt": "fox 1, edited"}, {"prompt": "fox 2"}])
    assert batch(kling, str(src)).exit_code == 0
    assert len(sends(against)) == 4
    assert batch(kling, str(src), "--restart").exit_code == 0
    assert len(sends(against)) == 7


def test_exit_code_is_the_first_line_that_did_not_complete(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [{"prompt": "ok"}, {"prompt": "[fail] x"}, {"prompt": "[no-video] y"}],
    )
    result = batch(kling, str(src))
    assert result.exit_code == 6
    lines = {int(x.split("\t")[0]): x.split("\t") for x in result.stdout.splitlines()}
    assert lines[1][2] == "completed" and lines[2][2] == "failed"


def test_stdin_and_shared_image_uploaded_once(kling, against, tmp_path: Path) -> None:
    png = tmp_path / "face.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    rows = "".join(
        json.dumps({"prompt": f"<<<image_1>>> {n}", "images": [str(png)]}) + "\n" for n in range(4)
    )
    result = batch(kling, "-", input=rows)
    assert result.exit_code == 0, result.stderr
    assert len([r for r in against.log if r.path.endswith("/uploads/images")]) == 1
    assert len({tuple(r.json["image_urls"]) for r in sends(against)}) == 1


def test_account_limit_is_back_pressure_not_failure(kling, against, tmp_path: Path) -> None:
    against.config.max_running = 2  # the sandbox answers Kling's code 1303 past two
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"fox {n}"} for n in range(5)])
    result = batch(kling, str(src), "--parallel", "5")
    assert result.exit_code == 0, result.stderr
    assert against.tasks_created == 5
    assert len(sends(against)) > 5  # some were refused with 1303 and sent again


def test_timeout_exits_7(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "[slow] fox"}])
    result = batch(kling, str(src), "--timeout", "0.3")
    assert result.exit_code == 7
    assert "line 1: exit 7: task video_" in result.stderr
    assert "is not final yet (still queued)" in result.stderr and "failed" not in result.stderr


@pytest.fixture
def flaky_sandbox():
    config = SandboxConfig(queue_seconds=0.2, run_seconds=0.8, faults=0.15, seed=7)
    with Sandbox(config=config) as sb:
        yield sb


def run_batch(sb: Sandbox, home: Path, src: Path, out: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "KLING_HOME": str(home),
        "KLING_BASE_URL": sb.base_url,
        "KLING_API_KEY": "k" * 20,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kling_cli", "--no-progress", "batch", str(src), "-o", str(out),
         "--interval", "0.1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.mark.slow
def test_fifty_lines_with_faults_killed_and_rerun(flaky_sandbox: Sandbox, tmp_path: Path) -> None:
    ratios = ["16:9", "9:16", "1:1"]
    rows = [{"prompt": f"scene {n}", "aspect_ratio": ratios[n % 3]} for n in range(50)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out, home = tmp_path / "out", tmp_path / "home"

    first = run_batch(flaky_sandbox, home, src, out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.mp4"))) < 5:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=20)
    killed_at = len(sends(flaky_sandbox))

    second = run_batch(flaky_sandbox, home, src, out)
    stdout, stderr = second.communicate(timeout=120)
    assert "Traceback" not in stderr
    docs = {d["line"]: d for d in map(json.loads, stdout.splitlines())}
    assert sorted(docs) == list(range(1, 51))

    # No line made two tasks; the re-run sent only lines the first run never sent.
    per_prompt = Counter(task.prompt for task in flaky_sandbox.tasks())
    assert max(per_prompt.values()) == 1, per_prompt.most_common(3)
    prompts_sent_twice = Counter(r.json["prompt"] for r in sends(flaky_sandbox) if r.status == 200)
    assert max(prompts_sent_twice.values()) == 1, prompts_sent_twice.most_common(3)
    assert killed_at <= len(sends(flaky_sandbox))

    for number, doc in docs.items():
        if doc.get("status") == "completed" and "output_files" in doc:
            saved = Path(doc["output_files"][0])
            assert saved.read_bytes() == flaky_sandbox.clip_bytes(ratios[(number - 1) % 3])
        else:
            assert doc.get("error") or doc.get("status") == "failed", doc
    completed = sum(1 for d in docs.values() if "output_files" in d)
    assert completed >= 35, stderr  # faults cost some lines (a 5xx send is not resent), not most
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial files
    assert second.returncode in (0, 4, 5, 6), stderr


@pytest.mark.slow
def test_sigkill_while_sending_never_sends_that_line_again(tmp_path: Path) -> None:
    with Sandbox(
        config=SandboxConfig(queue_seconds=0.1, run_seconds=0.2, faults=1.0, fault_kinds=["slow"])
    ) as sb:
        src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "held"}])
        first = run_batch(sb, tmp_path / "home", src, tmp_path / "out")
        deadline = time.monotonic() + 20
        while not sends(sb) and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # the answer (slowed down) never arrives
        first.wait(timeout=20)
        sb.config.faults = 0.0
        second = run_batch(sb, tmp_path / "home", src, tmp_path / "out")
        stdout, stderr = second.communicate(timeout=60)
    # The line's task is found by the business id of its send, and followed to the end.
    assert second.returncode == 0, stderr
    assert len(sends(sb)) == 1
    (task,) = sb.state.all_tasks()
    (doc,) = map(json.loads, stdout.splitlines())
    assert (doc["line"], doc["id"], doc["status"]) == (1, task.id, "completed")
    assert Path(doc["output_files"][0]).read_bytes() == sb.clip_bytes(task.aspect_ratio)


def test_plain_progress_lines_in_ci_change_only(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}, {"prompt": "a cat"}])
    result = kling("batch", str(src), "--interval", "0.1")  # stderr is not a terminal here
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("kling: line ")]
    assert any(" queued" in line for line in lines) and any(" completed" in line for line in lines)
    assert len(lines) == len(set(lines))  # a line per change, never the same twice
    assert "2 completed" in result.stderr


@pytest.mark.slow
def test_ctrl_c_then_rerun_sends_nothing_twice(tmp_path: Path) -> None:
    with Sandbox(config=SandboxConfig(queue_seconds=0.2, run_seconds=1.5)) as sb:
        rows = [{"prompt": f"scene {n}"} for n in range(8)]
        src = write_jsonl(tmp_path / "in.jsonl", rows)
        out, home = tmp_path / "out", tmp_path / "home"
        first = run_batch(sb, home, src, out)
        deadline = time.monotonic() + 20
        while len(sends(sb)) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 130, err
        assert "resume with: the same `kling batch` command" in err and "Traceback" not in err
        second = run_batch(sb, home, src, out)
        stdout, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert len(sends(sb)) == 8  # every line was sent once, by the first run
        assert len(list(out.glob("*.mp4"))) == 8
        assert len(stdout.splitlines()) == 8


@pytest.mark.parametrize("count", [3, 25])
def test_ctrl_c_names_the_tasks_in_flight_and_the_command_that_resumes(
    kling, against, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, count: int
) -> None:
    """As generate and wait do (CLI.md, exit 130): the ids on stderr, a screenful at most,
    and the command that resumes, which for a batch is the same one."""

    def ctrl_c(seconds: float) -> None:  # at the first wait for a poll: every line sent
        raise KeyboardInterrupt

    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"scene {n}"} for n in range(count)])
    monkeypatch.setattr(clock, "sleep", ctrl_c)
    result = batch(kling, str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 130, result.stderr
    made = [task.id for task in sorted(against.state.all_tasks(), key=lambda t: t.id)]
    assert len(made) == count
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("kling: error:")]
    named = error.partition("go on at the service: ")[2].split()
    if count <= 20:
        assert sorted(named) == made
    else:  # the first 20, and a count of the rest
        assert named[-3:] == ["and", str(count - 20), "more"] and set(named[:20]) <= set(made)
    hint = "kling: hint: resume with: the same `kling batch` command (nothing is sent twice)"
    assert hint in result.stderr.splitlines()


def test_batch_sleeps_between_polls(kling, against, clock: FakeClock, tmp_path: Path) -> None:
    """With nothing in flight the scheduler must sleep until the next poll is due: it once
    spun a core at 100% there. (A zero sleep on the fake clock raises.)"""
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    result = kling("--no-progress", "batch", str(src), "--interval", "2")
    assert result.exit_code == 0, result.stderr
    assert clock.slept == [2.0]  # sent, then one sleep until the poll that finds it completed


@pytest.mark.slow
def test_two_runs_of_one_file_at_once_never_pay_twice(tmp_path: Path) -> None:
    """The second run refuses while the first holds the file; a killed run holds nothing."""
    with Sandbox(config=SandboxConfig(queue_seconds=0.2, run_seconds=30)) as sb:
        src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"scene {n}"} for n in range(5)])
        home = tmp_path / "home"
        first = run_batch(sb, home, src, tmp_path / "out-a")
        deadline = time.monotonic() + 20
        while len(sends(sb)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        second = run_batch(sb, home, src, tmp_path / "out-b")  # another -o: the same file
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2, err
        assert f"another kling (pid {first.pid}) is running this batch file" in err
        assert len(sends(sb)) == 5
        first.kill()  # SIGKILL: the kernel drops its lock
        first.communicate(timeout=30)
        polled = len(sb.log)
        third = run_batch(sb, home, src, tmp_path / "out-a")
        # It polls (nothing to send): stop it once it does (not while Python still starts).
        deadline = time.monotonic() + 30
        while len(sb.log) == polled and time.monotonic() < deadline:
            time.sleep(0.02)
        third.send_signal(signal.SIGINT)
        _, err = third.communicate(timeout=30)
        assert third.returncode == 130 and "another kling" not in err
        assert len(sends(sb)) == 5


def test_results_print_in_line_order_whatever_finishes_first(
    kling, clock: FakeClock, tmp_path: Path
) -> None:
    config = SandboxConfig(queue_seconds=0.02, run_seconds=0.15, clock=clock.now)
    with Sandbox(config=config) as sb:
        rows = [{"prompt": "[slow] the first line takes longest"}, {"prompt": "quick"}]
        src = write_jsonl(tmp_path / "in.jsonl", rows)
        result = kling(
            "--base-url", sb.base_url, "--api-key", "k" * 20, "--no-progress", "batch",
            str(src), "--interval", "0.05", "--json", "-o", str(tmp_path / "out"),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        done = [r for r in sb.log if r.listener == "files"]
        assert done[0].path.split("/")[-1] != done[-1].path.split("/")[-1]
        assert [json.loads(doc)["line"] for doc in result.stdout.splitlines()] == [1, 2]
        first_saved = min((tmp_path / "out").iterdir(), key=lambda p: p.stat().st_mtime)
        assert first_saved.name.startswith("0002-")  # line 2 did finish first


def test_without_o_videos_go_to_output_dir_else_here(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox", "output": "fox.mp4"}])
    assert batch(kling, str(src)).exit_code == 0
    assert (Path.cwd() / "fox.mp4").stat().st_size > 0
    kling("config", "set", "output_dir", str(tmp_path / "videos"))
    assert batch(kling, str(src), "--restart").exit_code == 0
    assert (tmp_path / "videos" / "fox.mp4").stat().st_size > 0


def test_o_naming_a_file_is_refused_as_not_a_folder(kling, against, tmp_path: Path) -> None:
    """batch's -o is a folder: a file there said 'already exists, pass --force', and with
    --force the run crashed (internal error: FileExistsError)."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox"}])
    (tmp_path / "victim.mp4").write_bytes(b"mine")
    for force in ((), ("--force",)):
        result = batch(kling, str(src), "-o", str(tmp_path / "victim.mp4"), *force)
        assert result.exit_code == 2, result.stderr
        assert f"{tmp_path / 'victim.mp4'} is not a folder" in result.stderr
    assert sends(against) == [] and (tmp_path / "victim.mp4").read_bytes() == b"mine"


def test_a_byte_order_mark_at_the_start_is_not_part_of_the_first_line(
    kling, against, tmp_path: Path
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + b'{"prompt": "a fox"}\n{"prompt": "a cat"}\n')
    result = batch(kling, str(src))
    assert result.exit_code == 0, result.stderr
    assert sorted(r.json["prompt"] for r in sends(against)) == ["a cat", "a fox"]
    bom_later = tmp_path / "later.jsonl"
    bom_later.write_bytes(b'{"prompt": "a fox"}\n\xef\xbb\xbf{"prompt": "a cat"}\n')
    result = batch(kling, str(bom_later))
    assert result.exit_code == 2
    assert "line 2: starts with a byte order mark (U+FEFF)" in result.stderr


def test_a_whole_number_duration_may_be_written_5_0(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a fox", "duration": 10.0}])
    result = batch(kling, str(src))
    assert result.exit_code == 0, result.stderr
    (body,) = [r.json for r in sends(against)]
    assert body["duration"] == 10 and isinstance(body["duration"], int)


def test_durations_that_are_not_whole_numbers_and_keys_given_twice(
    kling, against, tmp_path: Path
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"prompt": "a", "duration": 5.5}\n'
        '{"prompt": "b", "duration": 1e309}\n'
        '{"prompt": "c", "prompt": "d"}\n'
        '{"prompt": "e", "metadata": {"seed": 1, "seed": 2}}\n'
        '{"prompt": "f", "duration": 5}\n'
    )
    result = batch(kling, str(src))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    at = lines.index("kling: error: 4 bad lines; nothing was sent")
    assert [line[:15] for line in lines[at + 1 : at + 5]] == [
        f"kling:   line {n}" for n in range(1, 5)
    ]
    assert "\\n" not in result.stderr  # no newline written escaped: a line each
    assert "line 1: `duration` must be a whole number of seconds, not 5.5" in result.stderr
    assert "line 2: `duration` must be a whole number of seconds; this one is too large" in (
        result.stderr
    )
    assert "line 3: the key 'prompt' is given twice" in result.stderr
    assert "line 4: the key 'seed' is given twice" in result.stderr
    assert "must be a number" not in result.stderr and "line 5" not in result.stderr
    assert against.log == []


def test_the_summary_says_how_each_line_ended(kling, against, tmp_path: Path) -> None:
    rows = [
        {"prompt": "a fox"},
        {"prompt": "[fail] a cat"},
        {"prompt": "[slow] a dog"},
        {"prompt": "a bird", "set": {"mode": "ultra"}},  # refused by the service (400)
        {"prompt": "[fail] a cow"},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    result = batch(kling, str(src), "--timeout", "1")
    assert result.exit_code == 6
    summary = [line for line in result.stderr.splitlines() if line.startswith("kling: batch:")]
    assert summary == ["kling: batch: 5 lines: 1 completed, 2 failed, 1 not finished, 1 refused"]
    one = write_jsonl(tmp_path / "one.jsonl", [{"prompt": "a fox"}])
    assert batch(kling, str(one)).stderr.splitlines()[-1] == "kling: batch: 1 line: 1 completed"


@pytest.mark.parametrize("text", ["", "\n  \n\n"])
def test_an_empty_file_has_nothing_to_do(kling, against, tmp_path: Path, text: str) -> None:
    """As a shard with no lines: exit 0, with a note."""
    src = tmp_path / "in.jsonl"
    src.write_text(text)
    result = batch(kling, str(src), "--json")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == f"kling: batch: {src} has no lines; nothing to do\n"
    piped = batch(kling, "-", input=text)
    assert (
        piped.exit_code == 0 and piped.stderr == "kling: batch: stdin has no lines; nothing to do\n"
    )
    assert against.log == []


def test_help_names_every_key_of_a_line(kling) -> None:
    from kling_cli.batch.lines import FIELDS

    result = kling("batch", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    missing = [key for key in FIELDS if f'"{key}"' not in result.stdout]
    assert missing == []
