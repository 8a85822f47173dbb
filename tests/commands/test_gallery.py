"""kling gallery FOLDER, and batch --gallery: the page over a folder of videos, its failed
lines, its exit codes, and the config key that turns it on."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import webbrowser
from pathlib import Path

import pytest

from kling_cli.errors import LocalFileError
from kling_cli.sandbox.server import Sandbox, SandboxConfig

ROWS = [
    {"prompt": "a red fox running through snow", "refs": ["https://example.com/fox.png"]},
    {"prompt": "[fail] a storm <script>alert(1)</script>", "aspect_ratio": "9:16"},
    {"prompt": "a calm lake", "aspect_ratio": "1:1", "mode": "pro", "duration": 10},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def batch(kling, *args: str):
    return kling("--no-progress", "batch", *args, "--interval", "0.1")


def articles(page: str) -> list[str]:
    return re.findall(r"<article .*?</article>", page, re.S)


def test_batch_gallery_shows_every_video_and_the_failed_line(
    kling, against, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out"
    result = batch(kling, str(src), "-o", str(out), "--gallery", "--json")
    assert result.exit_code == 6, result.stderr
    docs = {d["line"]: d for d in map(json.loads, result.stdout.splitlines())}  # stdout: as ever
    page = (out / "index.html").read_text()
    assert f"kling: gallery: {out / 'index.html'} (2 videos, 1 line without one)" in result.stderr
    cards = articles(page)
    assert len(cards) == 3
    fox, storm, lake = cards
    for card, number in ((fox, 1), (lake, 3)):
        name = Path(docs[number]["output_files"][0]).name
        assert f'src="{name}"' in card and docs[number]["id"] in card
    assert "a red fox running through snow" in fox and ">image: fox.png</a>" in fox
    assert "<dt>mode</dt><dd>pro</dd>" in lake and "<dt>duration</dt><dd>10 s</dd>" in lake
    assert "<video" not in storm and docs[2]["id"] in storm
    assert "[fail] a storm &lt;script&gt;alert(1)&lt;/script&gt;" in storm
    assert "sandbox: the prompt asked to fail ([fail]) (content_policy)" in storm
    assert "<dt>line</dt><dd>2</dd>" in storm and "<dt>aspect ratio</dt><dd>9:16</dd>" in storm
    (record,) = (out / ".kling-failed").iterdir()
    assert (
        record.name.startswith("0002-")
        and json.loads(record.read_text())["task_id"] == (docs[2]["id"])
    )
    assert str(tmp_path) not in page  # nothing in it depends on where the folder is


def test_gallery_rewrites_the_page_with_the_failed_lines_still_there(
    kling, against, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out"
    batch(kling, str(src), "-o", str(out), "--gallery", "--sidecar")
    before = (out / "index.html").read_text()
    (out / "index.html").unlink()
    result = kling("gallery", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{out / 'index.html'}\n"
    assert result.stderr == "kling: gallery: 2 videos, 1 line without one\n"
    after = (out / "index.html").read_text()
    strip = re.compile(r"written [^;]*;")  # the time it was written
    assert strip.sub("", after) == strip.sub("", before)
    assert "sandbox: the prompt asked to fail" in after


def test_quiet_prints_the_path_alone(kling, tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"\0" * 100)
    result = kling("gallery", str(tmp_path), "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, f"{tmp_path / 'index.html'}\n", ""
    )  # fmt: skip
    assert 'src="a.mp4"' in (tmp_path / "index.html").read_text()


def test_a_relative_folder_prints_an_absolute_path(kling, tmp_path: Path) -> None:
    Path("videos").mkdir()
    result = kling("gallery", "videos", "-q")
    assert result.stdout == f"{Path.cwd() / 'videos' / 'index.html'}\n"


def test_videos_saved_by_wait_are_explained_by_the_journal(kling, against, tmp_path: Path) -> None:
    task = kling("generate", "a heron at dawn", "--aspect-ratio", "9:16", "-q").stdout.strip()
    assert kling("wait", task, "-o", str(tmp_path / "v") + "/", "-q").exit_code == 0
    assert kling("gallery", str(tmp_path / "v"), "-q").exit_code == 0
    (card,) = articles((tmp_path / "v" / "index.html").read_text())
    assert "a heron at dawn" in card and task in card and "9:16" in card


def test_open_hands_the_page_to_the_browser(
    kling, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert kling("gallery", str(tmp_path), "--open", "-q").exit_code == 0
    assert opened == [(tmp_path / "index.html").as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    result = kling("gallery", str(tmp_path), "--open", "-q")
    assert result.exit_code == 0
    assert "no browser could be started: open file://" in result.stderr


@pytest.mark.parametrize("make", ["missing", "file"])
def test_a_folder_that_is_not_one_is_a_usage_error(kling, tmp_path: Path, make: str) -> None:
    target = tmp_path / "out"
    if make == "file":
        target.write_text("x")
    result = kling("gallery", str(target))
    assert result.exit_code == 2 and result.stdout == ""
    what = "no such folder" if make == "missing" else "is not a folder"
    assert result.stderr == f"kling: error: {target}{':' if make == 'missing' else ''} {what}\n"


def test_a_page_that_cannot_be_written_is_a_local_file_error(kling, tmp_path: Path) -> None:
    (tmp_path / "index.html").mkdir()  # what is in the way (root writes read-only folders)
    result = kling("gallery", str(tmp_path))
    assert result.exit_code == LocalFileError.exit_code == 8  # CLI.md
    assert result.stderr.startswith(f"kling: error: cannot write {tmp_path / 'index.html'}: ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("force", [False, True])
def test_a_symlink_as_the_page_is_never_replaced(kling, tmp_path: Path, force: bool) -> None:
    """index.html linked to a file elsewhere: the page is not written through it (a rename
    would replace the link; writing through it would touch a file outside the folder)."""
    elsewhere = tmp_path / "elsewhere.html"
    elsewhere.write_text("<h1>mine</h1>")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "index.html").symlink_to(elsewhere)
    result = kling("gallery", str(folder), *(["--force"] if force else []))
    assert result.exit_code == 2, result.stderr
    assert f"{folder / 'index.html'} is a symlink" in result.stderr
    assert (folder / "index.html").is_symlink() and elsewhere.read_text() == "<h1>mine</h1>"


def test_a_page_kling_did_not_write_needs_force(kling, against, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>mine</h1>")
    result = kling("gallery", str(tmp_path))
    assert result.exit_code == 2 and "not written by kling" in result.stderr
    assert "--force" in result.stderr
    src = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    ran = batch(kling, str(src), "-o", str(tmp_path), "--gallery")
    assert ran.exit_code == 0  # the videos are saved; the page is only a warning
    assert "kling: warning: gallery not written: " in ran.stderr
    assert (tmp_path / "index.html").read_text() == "<h1>mine</h1>"
    assert kling("gallery", str(tmp_path), "--force", "-q").exit_code == 0
    assert "kling gallery" in (tmp_path / "index.html").read_text()


def test_the_config_key_turns_it_on_and_the_flag_off(kling, against, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    assert kling("config", "set", "gallery", "true").exit_code == 0
    assert kling("config", "get", "gallery").stdout == "true\n"
    assert batch(kling, str(src), "-o", str(tmp_path / "on")).exit_code == 0
    assert (tmp_path / "on" / "index.html").exists()
    assert batch(kling, str(src), "-o", str(tmp_path / "off"), "--no-gallery").exit_code == 0
    assert not (tmp_path / "off" / "index.html").exists()
    assert kling("config", "set", "gallery", "maybe").exit_code == 2
    assert kling("config", "get", "gallery").stdout == "true\n"
    # the environment before the file
    off = kling("--no-progress", "batch", str(src), "-o", str(tmp_path / "env"), "--restart",
                "--interval", "0.1", env={"KLING_GALLERY": "0"})  # fmt: skip
    assert off.exit_code == 0 and not (tmp_path / "env" / "index.html").exists()


def test_without_gallery_batch_leaves_no_page_and_no_records(
    kling, against, tmp_path: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    batch(kling, str(src), "-o", str(tmp_path / "out"))
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".mp4", ".mp4"]


@pytest.mark.slow
def test_ctrl_c_writes_the_page_of_what_is_done(tmp_path: Path) -> None:
    """Interrupted, the run still leaves a page of the videos saved so far."""
    with Sandbox(config=SandboxConfig(queue_seconds=0.1, run_seconds=0.3)) as sb:
        rows = [{"prompt": "quick one"}, *({"prompt": f"[slow] scene {n}"} for n in range(3))]
        src = write_jsonl(tmp_path / "in.jsonl", rows)
        out = tmp_path / "out"
        env = {**os.environ, "KLING_HOME": str(tmp_path / "home"),
               "KLING_BASE_URL": sb.base_url, "KLING_API_KEY": "k" * 20}  # fmt: skip
        run = subprocess.Popen(
            [sys.executable, "-m", "kling_cli", "--no-progress", "batch", str(src), "-o",
             str(out), "--interval", "0.1", "--gallery"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert run.stdout is not None
        first = run.stdout.readline()  # line 1's row: its video saved and recorded
        assert first.startswith("1\t"), first
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    (video,) = out.glob("*.mp4")
    assert f"kling: gallery: {out / 'index.html'} (1 video)" in err
    (card,) = articles((out / "index.html").read_text())
    assert f'src="{video.name}"' in card and "quick one" in card
