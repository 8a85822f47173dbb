"""kling upload and kling list through the CLI entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("content", "looks_like"),
    [
        (b"not an image at all\n", "it looks like a text file"),
        (b"", "it is empty"),
        (b"%PDF-1.7\n", "it looks like a PDF document"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "it looks like a HEIC image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "it looks like SVG or XML text"),
        (b"\xff\xd8\x00\x9c\x01\x02", "its first bytes are ff d8 00 9c 01 02"),
    ],
)
def test_upload_refuses_what_is_not_an_image_before_sending(
    kling, against, tmp_path: Path, content: bytes, looks_like: str
) -> None:
    """Checked by extension only, a text file named .jpg was uploaded, then refused (exit 4)."""
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(content)
    result = kling("upload", str(fake))
    assert result.exit_code == 2, result.stderr
    assert f"{fake} is not a JPEG, PNG, WebP or GIF image: {looks_like}" in result.stderr
    assert against.log == [], "nothing was sent"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.jpg", b"\xff\xd8\xff\xe0\0\x10JFIF\0" + bytes(50)),
        ("a.png", PNG),
        ("a.webp", b"RIFF\x24\0\0\0WEBPVP8 " + bytes(50)),
        ("a.gif", b"GIF89a\x01\0\x01\0" + bytes(50)),
        ("png-named.jpg", PNG),  # what matters is what it is; the service looks at the bytes
    ],
)
def test_upload_takes_each_image_kind(
    kling, against, tmp_path: Path, name: str, content: bytes
) -> None:
    image = tmp_path / name
    image.write_bytes(content)
    result = kling("upload", str(image))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(against.file_base_url)


def test_generate_checks_an_images_bytes_before_sending(kling, against, tmp_path: Path) -> None:
    fake = tmp_path / "me.png"
    fake.write_text("hello\n")
    result = kling("generate", "<<<image_1>>> waves", "-i", str(fake))
    assert result.exit_code == 2
    assert f"{fake} is not a JPEG, PNG, WebP or GIF image: it looks like a text file" in (
        result.stderr
    )
    assert against.log == []


def test_list_empty(kling) -> None:
    result = kling("list", "--json")
    assert (result.exit_code, result.stdout) == (0, "")


def test_list_newest_first_with_limit(kling, against) -> None:
    ids = [kling("generate", f"fox {n}", "-q").stdout.strip() for n in range(3)]
    assert kling("list", "-q").stdout.split() == ids[::-1]
    assert kling("list", "-q", "--limit", "2").stdout.split() == ids[:0:-1]
    # More than SQLite can count (it crashed: OverflowError) is all of them.
    assert kling("list", "-q", "-n", "9" * 25).stdout.split() == ids[::-1]
    docs = [json.loads(line) for line in kling("list", "--json").stdout.splitlines()]
    assert docs[0]["prompt"] == "fox 2" and docs[0]["status"] == "queued"
    plain = kling("list").stdout.splitlines()[0].split("\t")
    assert plain[0] == ids[2] and plain[1] == "queued"


def test_upload_of_a_url_says_it_takes_local_files(kling, against, tmp_path: Path) -> None:
    """A URL was read as a path: "image file https:/x/a.png does not exist"."""
    a = tmp_path / "a.png"
    a.write_bytes(PNG)
    result = kling("upload", str(a), "https://img.example/a.png")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "kling: error: https://img.example/a.png is a URL; kling upload takes local files",
        "kling: hint: a URL needs no upload: pass it to generate -i as it is",
    ]
    assert against.log == []


def test_a_long_list_piped_stays_tab_separated(kling, isolated: Path) -> None:
    """Only a terminal gets the aligned lines of a long list: a pipe gets ID<TAB>STATUS<TAB>..."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

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


ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_transfer_lines_say_done_only_when_done(kling, against, tmp_path: Path) -> None:
    """Plain progress ends an upload with `done` and its size; a failed upload ends with its
    error alone, not a line of bytes that reads like success."""
    png = tmp_path / "me.png"
    png.write_bytes(PNG)
    ok = kling("--progress", "plain", "upload", str(png))
    assert ok.stderr.splitlines() == [
        "kling: uploading me.png ...",
        "kling: uploading me.png: done, 108 bytes",
    ]
    against.config.revoked_keys.add("sk-test-0123456789abcdef")
    failed = kling("--progress", "plain", "upload", str(png))
    assert failed.exit_code == 3
    assert "bytes" not in failed.stderr and failed.stderr.startswith(
        "kling: uploading me.png ...\nkling: error: "
    )


def test_the_live_bar_shows_nothing_it_does_not_know(kling, against, tmp_path: Path) -> None:
    """No `?` for the total or the speed before they are known: the size is known from the
    start, the speed is left blank until there is one."""
    png = tmp_path / "me.png"
    png.write_bytes(PNG)
    result = kling("--progress", "live", "upload", str(png))
    assert result.exit_code == 0
    frames = ESCAPES.sub("", result.stderr)
    assert "uploading me.png" in frames and "/108 bytes" in frames
    assert "?" not in frames
