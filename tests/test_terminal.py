"""kling in a real terminal (tmux): the live screen, colour rules, ASCII locales, narrow widths."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox


@pytest.fixture
def sandbox(live_sandbox: Sandbox) -> Sandbox:
    """Kling runs in a pseudo-terminal, in another process: the sandbox keeps real time."""
    return live_sandbox


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
KLING = [sys.executable, "-m", "kling_cli"]


def submit(sandbox, home: Path, prompt: str = "a fox") -> str:
    env = {
        **os.environ,
        "KLING_HOME": str(home),
        "KLING_BASE_URL": sandbox.base_url,
        "KLING_API_KEY": "k" * 20,
    }
    result = subprocess.run(
        [*KLING, "generate", prompt, "-q"], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def screen_of(
    command: str,
    env: dict[str, str],
    width: int = 100,
    escapes: bool = False,
    scrollback: bool = False,
    height: int = 30,
    joined: bool = False,
) -> str:
    """Run `command` in a fresh tmux session of `width` x `height`; return the screen once it
    printed EXIT= (with `scrollback`, everything that scrolled off it too; `joined`: a line
    the terminal wrapped as the one line that was written)."""
    session = f"kling-{uuid.uuid4().hex[:8]}"
    socket = f"kling-test-{session}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # -u COLUMNS/LINES: the test runner may export them; the terminal must decide the size.
    run = f"env -u COLUMNS -u LINES {exports} {command}"
    script = f"cd {shlex.quote(os.getcwd())} && {run}; echo EXIT=$?; sleep 60"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), script],
        check=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            args = [*tmux, "capture-pane", "-p", "-t", session] + (["-e"] if escapes else [])
            args += (["-S", "-"] if scrollback else []) + (["-J"] if joined else [])
            screen = subprocess.run(args, capture_output=True, text=True).stdout
            if "EXIT=" in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"no EXIT in:\n{screen}")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def base_env(sandbox, home: Path, **extra: str) -> dict[str, str]:
    env = {
        "KLING_HOME": str(home), "KLING_BASE_URL": sandbox.base_url, "KLING_API_KEY": "k" * 20,
        "TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONPATH": os.pathsep.join(sys.path),
    }  # fmt: skip
    env.update(extra)
    return env


def test_wait_draws_a_live_table_then_the_result(sandbox, tmp_path: Path) -> None:
    task_id = submit(sandbox, tmp_path)
    command = " ".join(map(shlex.quote, [*KLING, "wait", task_id, "--interval", "0.1"]))
    screen = screen_of(command, base_env(sandbox, tmp_path))
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    header = next(line for line in lines if line.split()[:2] == ["task", "status"])
    assert "progress" in header and "elapsed" in header
    row = next(line for line in lines if line.startswith(task_id) and "completed" in line)
    assert "100%" in row
    assert f"{task_id}  completed" in screen  # the result line, on stdout
    assert "EXIT=0" in screen


def test_a_stalled_task_keeps_its_row_saying_stalled(live_stalling, tmp_path: Path) -> None:
    task_id = submit(live_stalling, tmp_path, "[stall] a fox")
    args = [*KLING, "wait", task_id, "--interval", "0.05", "--stall-timeout", "0.3"]
    screen = screen_of(" ".join(map(shlex.quote, args)), base_env(live_stalling, tmp_path))
    *_, row = (line for line in screen.splitlines() if line.startswith(task_id))  # the table's
    assert row.split()[1:3] == ["stalled", "99%"]  # the message itself is the error line
    assert f"kling: error: task {task_id} stalled: no change" in screen
    assert "EXIT=7" in screen


def test_an_unknown_id_on_a_terminal_is_said_once(sandbox, tmp_path: Path) -> None:
    command = " ".join(map(shlex.quote, [*KLING, "wait", "video_NOPE", "--interval", "0.1"]))
    screen = screen_of(command, base_env(sandbox, tmp_path))
    assert screen.count("task not found") == 1
    assert "kling: error: video_NOPE: the service answered 404: task not found" in screen
    assert "unknown" not in screen and "EXIT=4" in screen


def test_json_on_a_terminal_is_pretty_and_coloured_unless_no_color(sandbox, tmp_path: Path) -> None:
    task_id = submit(sandbox, tmp_path)
    command = " ".join(map(shlex.quote, [*KLING, "status", task_id, "--json"]))
    coloured = screen_of(command, base_env(sandbox, tmp_path), escapes=True)
    assert "\x1b[" in coloured and '"id"' in coloured
    plain = screen_of(command, base_env(sandbox, tmp_path, NO_COLOR="1"), escapes=True)
    assert "\x1b[" not in plain.replace("\x1b[0m", "") and '  "id": ' in plain


def test_c_locale_gets_ascii_only(sandbox, tmp_path: Path) -> None:
    task_id = submit(sandbox, tmp_path)
    command = " ".join(
        map(
            shlex.quote,
            [*KLING, "wait", task_id, "--interval", "0.1", "-o", str(tmp_path / "v.mp4")],
        )
    )
    screen = screen_of(command, base_env(sandbox, tmp_path, LANG="C", LC_ALL="C"))
    assert "EXIT=0" in screen
    assert screen.isascii(), [c for c in screen if not c.isascii()]


@pytest.mark.parametrize("width", [50, 40])
def test_narrow_terminal_keeps_one_row_per_task_and_every_id_whole(
    sandbox, tmp_path: Path, width: int
) -> None:
    ids = [submit(sandbox, tmp_path, f"fox {n}") for n in range(3)]
    wait = " ".join(map(shlex.quote, [*KLING, "wait", *ids, "--interval", "0.1"]))
    screen = screen_of(wait + " >/dev/null", base_env(sandbox, tmp_path), width=width)
    table_rows = [line for line in screen.splitlines() if line.startswith("video_")]
    assert len(table_rows) == 3  # one line each, not wrapped
    assert [row.split()[0] for row in table_rows] == ids  # whole, for copying
    status = "completed" if width >= 50 else "comple"  # at 40 columns, the status gives way
    assert all(row.split()[1].startswith(status) for row in table_rows)
    assert "EXIT=0" in screen


def test_many_tasks_fit_the_screen_with_a_summary(sandbox, tmp_path: Path) -> None:
    ids = [sandbox.state.create_task({"model": "kling-v3-omni", "prompt": f"fox {n}"})["id"]
           for n in range(40)]  # fmt: skip
    wait = " ".join(map(shlex.quote, [*KLING, "wait", *ids, "--interval", "0.1"]))
    screen = screen_of(wait + " >/dev/null", base_env(sandbox, tmp_path))  # 30 lines high
    table_rows = [line for line in screen.splitlines() if line.startswith("video_")]
    assert 20 <= len(table_rows) <= 27 and all("completed" in row for row in table_rows)
    assert f"40 tasks: 40 completed ({40 - len(table_rows)} not shown)" in screen
    assert "EXIT=0" in screen


def test_dumb_terminal_gets_plain_lines(sandbox, tmp_path: Path) -> None:
    task_id = submit(sandbox, tmp_path)
    command = " ".join(map(shlex.quote, [*KLING, "wait", task_id, "--interval", "0.1"]))
    screen = screen_of(command, base_env(sandbox, tmp_path, TERM="dumb"))
    assert f"kling: {task_id} completed 100%" in screen
    assert "EXIT=0" in screen


def test_api_key_prompt_is_hidden(tmp_path: Path) -> None:
    key = "sk-typed-at-the-prompt-0123456789"
    session, socket = f"kling-{uuid.uuid4().hex[:8]}", f"kling-test-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    pythonpath = shlex.quote(os.pathsep.join(sys.path))
    env = f"env -u COLUMNS KLING_HOME={shlex.quote(str(tmp_path))} PYTHONPATH={pythonpath}"
    command = " ".join(map(shlex.quote, [*KLING, "config", "set", "api_key"]))
    script = f"{env} {command}; echo EXIT=$?; sleep 60"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", "100", "-y", "10", script], check=True
    )
    try:

        def screen() -> str:
            return subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout

        deadline = time.monotonic() + 20
        while "api_key:" not in screen() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run([*tmux, "send-keys", "-t", session, key, "Enter"], check=True)
        while "EXIT=" not in screen() and time.monotonic() < deadline:
            time.sleep(0.05)
        shown = screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert "EXIT=0" in shown and key not in shown
    assert f'api_key = "{key}"' in (tmp_path / "config.toml").read_text()


def test_force_color_never_colours_piped_stdout(sandbox, tmp_path: Path) -> None:
    task_id = submit(sandbox, tmp_path, "[fail] a fox")
    env = {**os.environ, **base_env(sandbox, tmp_path, FORCE_COLOR="1")}
    result = subprocess.run(
        [*KLING, "wait", task_id, "--json", "--interval", "0.1"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 6
    assert "\x1b[" not in result.stdout  # piped stdout stays plain JSON
    assert result.stdout.startswith("{") and result.stdout.count("\n") == 1


def test_batch_draws_an_overall_bar(sandbox, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(f'{{"prompt": "scene {n}"}}\n' for n in range(5)))
    command = " ".join(map(shlex.quote, [*KLING, "batch", str(source), "--interval", "0.1"]))
    screen = screen_of(command + " >/dev/null", base_env(sandbox, tmp_path))
    assert "5/5 done, 5 completed, 0 running" in screen
    assert "batch: 5 lines: 5 completed" in screen
    assert "EXIT=0" in screen


def test_the_overall_bar_names_what_did_not_complete_as_the_summary_does(
    sandbox, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"prompt": "a fox"}\n{"prompt": "[fail] a owl"}\n{"prompt": "[stall] a cat"}\n'
    )
    argv = [*KLING, "batch", str(source), "--interval", "0.1", "--stall-timeout", "1"]
    screen = screen_of(
        " ".join(map(shlex.quote, argv)) + " >/dev/null", base_env(sandbox, tmp_path)
    )
    assert "3/3 done, 1 completed, 1 failed, 1 not finished, 0 running" in screen
    assert "batch: 3 lines: 1 completed, 1 failed, 1 not finished" in screen


def test_list_on_a_terminal_is_aligned_columns(sandbox, tmp_path: Path) -> None:
    task_id = submit(sandbox, tmp_path, "a fox by the river")
    command = " ".join(map(shlex.quote, [*KLING, "list"]))
    screen = screen_of(command, base_env(sandbox, tmp_path))
    header = next(line for line in screen.splitlines() if line.startswith("task"))
    assert header.split()[:4] == ["task", "status", "progress", "submitted"]
    row = next(line for line in screen.splitlines() if line.startswith(task_id))
    assert "queued" in row and "a fox by the river" in row and "\t" not in row


@pytest.mark.parametrize("width", [70, 50, 40])
def test_list_in_a_narrow_terminal_keeps_every_id_whole(
    sandbox, tmp_path: Path, width: int
) -> None:
    ids = [submit(sandbox, tmp_path, f"a fox by the river, take {n}") for n in range(3)]
    command = " ".join(map(shlex.quote, [*KLING, "list"]))
    screen = screen_of(command, base_env(sandbox, tmp_path), width=width)
    rows = [line for line in screen.splitlines() if line.startswith("video_")]
    assert [row.split()[0] for row in rows] == ids[::-1]  # newest first, each whole
    if width >= 50:
        assert all(row.split()[1:3] == ["queued", "0%"] for row in rows)
    if width >= 70:  # the prompt too, cut to fit
        assert "a fox by the" in rows[0]
    assert "EXIT=0" in screen


def test_a_long_list_on_a_terminal_is_aligned_lines_with_every_id_whole(tmp_path: Path) -> None:
    """More tasks than fit on the screen: plain aligned lines (a rich table of thousands of rows
    took seconds to draw), one per task, every id whole and in order, nothing wrapped."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(tmp_path / JOURNAL_FILE)
    ids = []
    for n in range(45):  # the screen has 30 rows
        task_id = f"video_{'x' * (n % 7)}{n:03}"
        prompt = "狐狸在河边 a fox by the river at dawn, " * (n % 4) + f"take {n}"
        journal.record_submitted(
            TaskView.of({"id": task_id, "status": "queued"}), "https://api", {"prompt": prompt}
        )
        ids.append(task_id)
    journal.close()
    env = {"KLING_HOME": str(tmp_path), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    command = " ".join(map(shlex.quote, [*KLING, "list", "-n", "100"]))
    screen = screen_of(command, env, width=100, scrollback=True).splitlines()
    start = next(i for i, line in enumerate(screen) if line.startswith("task "))
    header, rows = screen[start], screen[start + 1 : start + 1 + len(ids)]
    assert header.split()[:5] == ["task", "status", "progress", "submitted", "prompt"]
    assert [row.split()[0] for row in rows] == ids[::-1]  # newest first, each id whole
    assert screen[start + 1 + len(ids)].startswith("EXIT=0")  # no wrapped line in between
    status_at = header.index("status")
    assert all(row[status_at:].startswith("queued") for row in rows)  # aligned
    assert any(row.rstrip().endswith("\u2026") for row in rows)  # a long prompt, cut to fit
    assert "\t" not in "".join(rows)


def test_a_tall_terminal_still_gets_lines_past_a_few_hundred_tasks(tmp_path: Path) -> None:
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(tmp_path / JOURNAL_FILE)
    count = 201
    for n in range(count):
        journal.record_submitted(
            TaskView.of({"id": f"video_{n:04}", "status": "completed"}),
            "https://api",
            {"prompt": f"take {n}: a fox by the river at dawn, in the rain, slowly"},
        )
    journal.close()
    env = {"KLING_HOME": str(tmp_path), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    env.update(PYTHONPATH=os.pathsep.join(sys.path), LINES="5000")  # room for them all
    command = " ".join(map(shlex.quote, [*KLING, "list", "-n", str(count)]))
    screen = screen_of(command, env, width=60, scrollback=True).splitlines()
    rows = [line for line in screen if line.startswith("video_")]
    # one line per task, the prompt cut (a table would wrap it in its cell, over several lines)
    assert [row.split()[0] for row in rows] == [f"video_{n:04}" for n in reversed(range(count))]
    assert all(row.endswith("\u2026") for row in rows)
    assert len(screen) - screen.count("") < count + 5


def test_list_on_a_terminal_shows_20_and_says_how_many_more(tmp_path: Path) -> None:
    """On a terminal the newest 20, and a note of the rest: a cut list never reads as all."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(tmp_path / JOURNAL_FILE)
    for n in range(23):
        task = TaskView.of({"id": f"video_{n:03}", "status": "queued"})
        journal.record_submitted(task, "https://api", {"prompt": f"take {n}"})
    journal.close()
    env = {"KLING_HOME": str(tmp_path), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    screen = screen_of(" ".join(map(shlex.quote, [*KLING, "list"])), env, scrollback=True)
    rows = [line for line in screen.splitlines() if line.startswith("video_")]
    assert [row.split()[0] for row in rows] == [f"video_{n:03}" for n in range(22, 2, -1)]
    assert "kling: 3 more tasks not shown: kling list -n 23" in screen
    assert "EXIT=0" in screen


def test_download_to_stdout_is_refused_on_a_terminal(sandbox, tmp_path: Path) -> None:
    """`download ID -o -` on a terminal would print an mp4 there: exit 2, nothing sent."""
    command = " ".join(map(shlex.quote, [*KLING, "download", "video_ANY", "-o", "-"]))
    screen = screen_of(command, base_env(sandbox, tmp_path))
    assert "kling: error: -o - writes the video to stdout, which is a terminal" in screen
    assert "kling: hint: redirect or pipe it: kling download ID -o - > video.mp4" in screen
    assert "EXIT=2" in screen and sandbox.log == []


def test_balance_on_a_terminal_names_each_amount(sandbox, tmp_path: Path) -> None:
    """Two bare numbers on a terminal said nothing of which was which: a note on stderr says
    it, and stdout keeps CLI.md's REMAINING<TAB>USED."""
    command = " ".join(map(shlex.quote, [*KLING, "balance"]))
    lines = screen_of(command, base_env(sandbox, tmp_path)).splitlines()
    assert lines[0].startswith("kling: remaining and used")
    assert lines[1].split() == ["100.0", "0.0"]
    assert "EXIT=0" in lines[2]


@pytest.mark.parametrize("height", [60, 12])
def test_batch_results_stay_on_the_screen_whole_and_aligned(tmp_path: Path, height: int) -> None:
    """20 lines in a 160x60 pane: while the live view (bar and a row per line in flight) is
    redrawn, each result is written above it; at the end every result row is on the screen
    once, whole on its own line (never glued to a live row, never wiped by a redraw), its
    columns aligned, followed by the summary. In a pane of 12 rows the view keeps within the
    screen, so no frame of it is left behind in what scrolled off."""
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    source = tmp_path / "t20.jsonl"
    source.write_text("".join(f'{{"prompt": "scene {n}: a fox"}}\n' for n in range(20)))
    out = tmp_path / "out"
    # Answers that take a while, two sends or downloads at a time: the results come in over a
    # few seconds, in bursts, with the live view drawn and redrawn between them.
    pace = SandboxConfig(queue_seconds=0.2, run_seconds=0.5, latency=0.15)
    with Sandbox(config=pace) as sandbox:
        args = [*KLING, "batch", str(source), "-o", str(out), "-p", "2", "--interval", "0.1"]
        command = " ".join(map(shlex.quote, args))
        screen = screen_of(
            command,
            base_env(sandbox, tmp_path),
            width=160,
            height=height,
            scrollback=True,
            joined=True,
        )
    lines = [line.rstrip() for line in screen.splitlines()]
    assert "EXIT=0" in screen, screen
    saved = sorted(out.glob("*.mp4"))  # NNNN-TASKID.mp4: which task each line made
    assert len(saved) == 20
    rows = []
    for number, video in enumerate(saved, start=1):
        task_id = video.stem.split("-", 1)[1]
        # The line number aligned right, then two spaces between columns padded to their width.
        row = f"{number:>2}  {task_id:<32}  {'completed':<11}  {video}"
        assert lines.count(row) == 1, f"line {number} is not one whole row:\n{screen}"
        assert sum(task_id in line for line in lines) == 1, screen  # not also in a live row
        rows.append(lines.index(row))
    assert rows == sorted(rows)  # in the file's order
    summary = lines.index("kling: batch: 20 lines: 20 completed")
    assert rows[-1] < summary
    frames = [line for line in lines if " done, " in line]  # the view's head line
    assert len(frames) == 1 and "20/20 done, 20 completed, 0 running" in frames[0]
    assert rows[-1] < lines.index(frames[0]) < summary  # the last frame, below the results


def test_a_warning_during_the_live_view_is_a_line_of_its_own(tmp_path: Path) -> None:
    """A message on stderr while the live view is drawn (here the balance warning, which comes
    after a slow answer) goes above it: a whole line, not glued to its last row, and no frame
    of the view left behind on the screen."""
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    source = tmp_path / "t5.jsonl"
    source.write_text("".join(f'{{"prompt": "scene {n}"}}\n' for n in range(5)))
    # Every answer takes 0.4 s: the view (drawn 4 times a second) is up when the balance comes.
    pace = SandboxConfig(queue_seconds=0.1, run_seconds=0.3, latency=0.4, balance=0)
    with Sandbox(config=pace) as sandbox:
        args = [*KLING, "batch", str(source), "-o", str(tmp_path / "out"), "--interval", "0.1"]
        command = " ".join(map(shlex.quote, args))
        screen = screen_of(command, base_env(sandbox, tmp_path), width=160, joined=True)
    lines = [line.rstrip() for line in screen.splitlines()]
    assert "EXIT=0" in screen, screen
    warning = "kling: warning: the balance of this API key reads 0.0 (used 0.0): "
    assert [line for line in lines if "the balance" in line] == [
        warning + "the service may refuse the tasks"
    ], screen
    frames = [line for line in lines if " done, " in line]  # the view's head line
    assert len(frames) == 1 and "5/5 done, 5 completed" in frames[0], screen
    assert lines.index(frames[0]) < lines.index("kling: batch: 5 lines: 5 completed")


MARKUP = "[red]crimson[/red] [link=http://x]sky[/link] fox [bold]w"


def test_user_text_is_never_rich_markup(sandbox, tmp_path: Path) -> None:
    """Prompts and the service's words print as the characters they are wherever rich draws:
    `kling list`, the live wait table and its summary line, the result lines and the errors.
    Read as markup, the brackets would vanish into a colour, a hyperlink or bold."""
    env = base_env(sandbox, tmp_path)
    submit(sandbox, tmp_path, MARKUP)
    listed = screen_of(" ".join(map(shlex.quote, [*KLING, "list"])), env, width=160, escapes=True)
    assert "EXIT=0" in listed and "\x1b]8;" not in listed
    assert MARKUP in re.sub(r"\x1b\[[0-9;]*m", "", listed)

    # More tasks than the 10 rows hold: the table's summary line counts them by status.
    state = sandbox.state
    ids = [state.create_task({"model": "kling-v3-omni", "prompt": f"fox {n}"})["id"]
           for n in range(12)]  # fmt: skip
    odd = "[red]odd[/red] [link=http://x]y[/link]"  # a status no one knows: never final
    state.set_task(ids[0], status=odd)
    state.set_task(ids[1], status="failed", error={"code": "x", "message": MARKUP})
    args = [*KLING, "wait", *ids, "--interval", "0.1", "--timeout", "2"]
    screen = screen_of(
        " ".join(map(shlex.quote, args)),
        env,
        width=160,
        height=10,
        escapes=True,
        scrollback=True,
        joined=True,
    )
    assert "EXIT=7" in screen and "\x1b]8;" not in screen  # no hyperlink anywhere
    screen = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # the colours of kling's own
    lines = screen.splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("task "))
    assert lines[header + 1].startswith(f"{ids[0]}  {odd}  ")  # the live table's last frame
    assert any(line.startswith(f"{ids[0]}  {odd}  ") for line in lines)  # its result line
    assert any(line.startswith("12 tasks: ") and f"1 {odd}," in line for line in lines)
    assert any(line.startswith(f"{ids[1]}  failed") and MARKUP in line for line in lines)
    assert f"task {ids[1]} failed: {MARKUP} (x)" in screen  # the error line on stderr
    assert f"still {odd})" in screen  # and the one of the task not final

    # A batch: the failed line's row and the summary's reasons; [fail] is the service's too.
    source = tmp_path / "b.jsonl"
    source.write_text(f'{{"prompt": "{MARKUP} [fail]"}}\n{{"prompt": "a fox"}}\n')
    args = [*KLING, "batch", str(source), "-o", str(tmp_path / "out"), "--interval", "0.1"]
    screen = screen_of(" ".join(map(shlex.quote, args)), env, width=160, escapes=True, joined=True)
    assert "EXIT=6" in screen and "\x1b]8;" not in screen
    screen = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    asked = "sandbox: the prompt asked to fail ([fail]) (content_policy)"
    row = next(line for line in screen.splitlines() if line.startswith("1  video_"))
    assert row.endswith(f"  failed       {asked}")
    assert f"  line 1: exit 6: task {row.split()[1]} failed: {asked}" in screen
