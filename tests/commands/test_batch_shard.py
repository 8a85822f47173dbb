"""kling batch FILE --shard K/N: N runs (CI jobs) share one file, every line sent exactly once
overall, each run its own lines only, resumable per shard, shards of one file side by side."""

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

from kling_cli.sandbox.server import Sandbox, SandboxConfig


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def sent_prompts(sandbox: Sandbox) -> list[str]:
    """The prompt of every generation request the sandbox accepted, in order."""
    return [
        r.json["prompt"]
        for r in sandbox.log
        if r.method == "POST" and r.path == "/v1/videos/generations" and r.status == 200
    ]


def scene(number: int) -> str:
    return f"scene on line {number}"


def scenes(count: int) -> list[dict]:
    return [{"prompt": scene(n)} for n in range(1, count + 1)]


def test_three_shards_send_every_line_exactly_once(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", scenes(10))
    shard_lines = {1: [1, 4, 7, 10], 2: [2, 5, 8], 3: [3, 6, 9]}
    for k, numbers in shard_lines.items():
        before = len(sent_prompts(against))
        out = tmp_path / f"out-{k}"
        result = kling("--no-progress", "batch", str(src), "--shard", f"{k}/3", "-o", str(out),
                       "--json", "--interval", "0.1")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        # This shard sent its own lines, each once, and no other.
        assert sorted(sent_prompts(against)[before:]) == sorted(scene(n) for n in numbers)
        docs = [json.loads(doc) for doc in result.stdout.splitlines()]
        assert [d["line"] for d in docs] == numbers  # numbers in the whole file, in order
        assert sorted(p.name[:4] for p in out.glob("*.mp4")) == [f"{n:04d}" for n in numbers]
        assert f"batch: {len(numbers)} lines (shard {k}/3): {len(numbers)} completed\n" in (
            result.stderr
        )
    assert Counter(sent_prompts(against)) == Counter(scene(n) for n in range(1, 11))
    assert against.request_counts["POST /v1/videos/generations"] == 10


def test_exit_code_and_results_cover_the_shard_only(kling, against, tmp_path: Path) -> None:
    rows = [{"prompt": "fine"}, {"prompt": "[fail] breaks"}, {"prompt": "fine too"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    first = kling("--no-progress", "batch", str(src), "--shard", "1/2", "--interval", "0.1")
    assert first.exit_code == 0, first.stderr
    assert [row.split("\t")[0] for row in first.stdout.splitlines()] == ["1", "3"]
    second = kling("--no-progress", "batch", str(src), "--shard", "2/2", "--interval", "0.1")
    assert second.exit_code == 6
    assert [row.split("\t")[:3:2] for row in second.stdout.splitlines()] == [["2", "failed"]]


def test_more_shards_than_lines_leaves_nothing_to_do(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", scenes(2))
    result = kling("--no-progress", "batch", str(src), "--shard", "3/3")
    assert result.exit_code == 0 and result.stdout == ""
    assert "shard 3/3 has no lines" in result.stderr
    assert against.log == []


def test_every_shard_checks_the_whole_file(kling, against, tmp_path: Path) -> None:
    """A bad line stops all N jobs before any pays, whichever shard it falls in."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "ok"}\n{"promt": "typo"}\n{"prompt": "ok too"}\n')
    result = kling("--no-progress", "batch", str(src), "--shard", "1/2")
    assert result.exit_code == 2 and "line 2:" in result.stderr
    assert against.log == []


@pytest.mark.parametrize("value", ["0/3", "4/3", "a/b", "1/0", "2", "", "1/2/3", "-1/2"])
def test_bad_shard_values_are_one_line_usage_errors(
    kling, against, tmp_path: Path, value: str
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", scenes(3))
    result = kling("batch", str(src), "--shard", value)
    assert result.exit_code == 2
    (message,) = result.stderr.strip().splitlines()
    assert message.startswith("kling: error: --shard") and "K/N" in message
    assert "Traceback" not in result.stderr and against.log == []


def test_restart_of_a_shard_forgets_that_shard_only(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", scenes(4))
    for k in (1, 2):
        assert kling("--no-progress", "batch", str(src), "--shard", f"{k}/2").exit_code == 0
    assert len(sent_prompts(against)) == 4
    again = kling("--no-progress", "batch", str(src), "--shard", "2/2", "--restart")
    assert again.exit_code == 0
    assert sorted(sent_prompts(against)[4:]) == [scene(2), scene(4)]
    assert kling("--no-progress", "batch", str(src), "--shard", "1/2").exit_code == 0
    assert len(sent_prompts(against)) == 6  # shard 1 still remembers its lines


def test_shard_completion_offers_k_of_n() -> None:
    from kling_cli import completion

    offered = [value for value, _ in completion.shards("")]
    assert offered[:5] == ["1/2", "2/2", "1/3", "2/3", "3/3"]
    assert [value for value, _ in completion.shards("3/")] == [f"3/{n}" for n in range(3, 9)]


# --- in separate processes: kill, resume, run at once --------------------------------------------


def start(sb: Sandbox, home: Path, src: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KLING_HOME": str(home),
        "KLING_BASE_URL": sb.base_url,
        "KLING_API_KEY": "k" * 20,
    }
    argv = [sys.executable, "-m", "kling_cli", "--no-progress", "batch", str(src),
            "--interval", "0.1", "--json", *args]  # fmt: skip
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def polled(sandbox: Sandbox) -> set[str]:
    """The task ids the sandbox was asked about."""
    prefix = "/v1/videos/generations/"
    return {
        r.path[len(prefix) :]
        for r in sandbox.log
        if r.method == "GET" and r.path.startswith(prefix)
    }


def until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_shard_resumes_after_ctrl_c_and_kill_sending_nothing_twice(tmp_path: Path) -> None:
    with Sandbox(config=SandboxConfig(queue_seconds=0.2, run_seconds=1.5)) as sb:
        src = write_jsonl(tmp_path / "in.jsonl", scenes(12))
        home, out = tmp_path / "home", tmp_path / "out"
        mine = [scene(n) for n in (2, 5, 8, 11)]
        first = start(sb, home, src, "--shard", "2/3", "-o", str(out), "-p", "2")
        until(lambda: len(sent_prompts(sb)) >= 2)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 130, err
        second = start(sb, home, src, "--shard", "2/3", "-o", str(out), "-p", "2")
        until(lambda: len(sent_prompts(sb)) >= 4 and polled(sb) >= {t.id for t in sb.tasks()})
        second.kill()  # SIGKILL, its lines sent and their ids recorded (each was polled)
        second.communicate(timeout=30)
        third = start(sb, home, src, "--shard", "2/3", "-o", str(out))
        stdout, err = third.communicate(timeout=60)
        assert third.returncode == 0, err
        assert sorted(sent_prompts(sb)) == sorted(mine)  # each of its lines once; no other
        assert [json.loads(doc)["line"] for doc in stdout.splitlines()] == [2, 5, 8, 11]
        assert len(list(out.glob("*.mp4"))) == 4


def test_two_shards_run_at_once_the_same_shard_twice_is_refused(tmp_path: Path) -> None:
    # Tasks long enough that both are still running while three more runs start and stop.
    with Sandbox(config=SandboxConfig(queue_seconds=0.2, run_seconds=5.0)) as sb:
        src = write_jsonl(tmp_path / "in.jsonl", scenes(6))
        home = tmp_path / "home"  # one machine, one journal
        one = start(sb, home, src, "--shard", "1/2", "-o", str(tmp_path / "out-1"))
        two = start(sb, home, src, "--shard", "2/2", "-o", str(tmp_path / "out-2"))
        until(lambda: len(sent_prompts(sb)) == 6)  # both sending side by side
        # The same shard; another N (its shard 1 shares lines with both); the whole file.
        for refused, holders in (("1/2", [one]), ("1/3", [one, two]), (None, [one, two])):
            again = start(sb, home, src, *(["--shard", refused] if refused else []))
            _, err = again.communicate(timeout=30)
            assert again.returncode == 2, err
            (error,) = [json.loads(line)["error"] for line in err.splitlines()]  # --json
            assert any(
                f"another kling (pid {run.pid}) is running shard {k}/2 of this batch file"
                in error["message"]
                for k, run in enumerate(holders, start=1)
            ), error
        outputs = [run.communicate(timeout=60) for run in (one, two)]
        assert [run.returncode for run in (one, two)] == [0, 0], outputs
        lines = [[json.loads(doc)["line"] for doc in out.splitlines()] for out, _ in outputs]
        assert lines == [[1, 3, 5], [2, 4, 6]]
        assert Counter(sent_prompts(sb)) == Counter(scene(n) for n in range(1, 7))
        # Done, the locks are free: the whole file runs, and has nothing left to send.
        whole = start(sb, home, src)
        _, err = whole.communicate(timeout=60)
        assert whole.returncode == 0, err
        assert len(sent_prompts(sb)) == 6
