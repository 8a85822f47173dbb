"""Status spellings and `kling balance`, through the CLI entry point against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox

FAST = ("--interval", "0.05")
COMPLETED = ["completed", "succeed", "succeeded", "success"]
FAILED = ["failed", "cancelled", "canceled", "expired", "error"]
PENDING = ["queued", "submitted", "in_progress", "processing", "pending", "running", "weird_state"]


def polls(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.log if r.method == "GET" and "/generations/" in r.path)


@pytest.mark.parametrize("spelling", COMPLETED)
def test_every_completed_spelling_downloads_and_exits_0(kling, against, spelling) -> None:
    result = kling("generate", f"[status:{spelling}] a fox", "-o", "fox.mp4", "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["status"] == spelling  # as it came
    assert Path("fox.mp4").stat().st_size > 0 and task["output_files"]


@pytest.mark.parametrize("spelling", FAILED)
def test_every_failed_spelling_exits_6_at_once_with_its_message(kling, against, spelling) -> None:
    task_id = kling("generate", f"[status:{spelling}] a fox", "-q").stdout.strip()
    result = kling("wait", task_id, "--timeout", "30", *FAST)
    assert result.exit_code == 6, result.stderr
    shown = "" if spelling == "failed" else f" ({spelling})"
    assert f"task {task_id} failed{shown}: " in result.stderr
    asked = polls(against)
    assert asked < 40  # final at once: not polled until the 30 s timeout
    status = kling("status", task_id, "-q")
    assert status.exit_code == 6 and status.stdout == f"{spelling}\n"
    download = kling("download", task_id)
    assert download.exit_code == 6


@pytest.mark.parametrize("spelling", PENDING)
def test_pending_spellings_keep_polling_and_show_as_they_came(kling, against, spelling) -> None:
    task_id = kling("generate", f"[status:{spelling}] [slow] a fox", "-q").stdout.strip()
    result = kling("wait", task_id, "--timeout", "0.6", *FAST)
    assert result.exit_code == 7
    if spelling != "queued":  # the sandbox's queue shows first
        status = kling("status", task_id)
        assert status.stdout.split("\t")[1] in (spelling, "queued")


def test_a_batch_counts_spellings_too(kling, against, tmp_path: Path) -> None:
    rows = [{"prompt": "[status:succeed] one"}, {"prompt": "[status:cancelled] two"}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = kling("--no-progress", "batch", str(src), "-o", str(tmp_path / "out"), *FAST)
    assert result.exit_code == 6
    first, second = (line.split("\t") for line in result.stdout.splitlines())
    assert first[2] == "succeed" and first[3].endswith(".mp4")
    assert second[2] == "cancelled"
    assert "batch: 2 lines: 1 completed, 1 failed\n" in result.stderr


def test_list_json_has_the_state_whatever_the_spelling(kling, against) -> None:
    task_id = kling("generate", "[status:canceled] x", "-q").stdout.strip()
    kling("wait", task_id, *FAST)
    (entry,) = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert entry["status"] == "canceled" and entry["state"] == "failed"


# --- kling balance -------------------------------------------------------------------------------


def test_balance_remaining_and_used(kling, against) -> None:
    fresh = kling("balance")
    assert fresh.exit_code == 0 and fresh.stdout == "100.0\t0.0\n"
    kling("generate", "a fox", "-q")
    spent = kling("balance").stdout.rstrip("\n").split("\t")
    assert float(spent[0]) < 100 and float(spent[1]) > 0
    assert kling("balance", "-q").stdout == f"{spent[0]}\n"
    document = json.loads(kling("balance", "--json").stdout)
    assert document["success"] is True and document["unlimited_quota"] is False


def test_balance_unlimited(kling, against) -> None:
    against.config.unlimited = True
    assert kling("balance").stdout.startswith("unlimited\t")
    assert kling("balance", "-q").stdout == "unlimited\n"
    assert json.loads(kling("balance", "--json").stdout)["remain_balance"] == -1


def test_balance_of_a_key_the_service_does_not_know_exits_3(kling, against) -> None:
    against.config.unknown_keys = {"sk-test-0123456789abcdef"}
    result = kling("balance")
    assert result.exit_code == 3 and result.stdout == ""
    assert "record not found" in result.stderr
    as_json = kling("balance", "--json")
    assert as_json.exit_code == 3 and json.loads(as_json.stderr)["error"]["exit_code"] == 3


def test_balance_refused_key_exits_3(kling, against) -> None:
    against.config.revoked_keys = {"sk-test-0123456789abcdef"}
    result = kling("balance")
    assert result.exit_code == 3 and "401" in result.stderr


def test_balance_in_the_sandbox_and_without_a_key(kling) -> None:
    sandboxed = kling("--sandbox", "balance")
    assert sandboxed.exit_code == 0 and sandboxed.stdout == "100.0\t0.0\n"
    assert kling("balance").exit_code == 3  # no key anywhere


def test_batch_warns_before_sending_when_the_balance_reads_zero(kling, against, tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a fox"}\n')
    against.config.balance = 0.0
    result = kling("--no-progress", "batch", str(src), *FAST)
    assert result.exit_code == 0  # a warning, not a stop: the service decides
    assert "warning: the balance of this API key reads 0.0" in result.stderr
    again = kling("--no-progress", "batch", str(src), "--restart", *FAST)
    assert "balance" in again.stderr  # still 0 or less: spent more
    against.config.balance = 50.0
    fine = kling("--no-progress", "batch", str(src), "--restart", *FAST)
    assert "balance" not in fine.stderr
