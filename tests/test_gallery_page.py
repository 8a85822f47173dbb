"""The gallery page from plain data (render), the data from a folder (gather), and the page's
own files (write_page, the records of lines that made no video)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_cli.api.tasks import NOT_SEEN, TaskView
from kling_cli.errors import LocalFileError, UsageError
from kling_cli.gallery import (
    PAGE,
    RECORDS,
    Card,
    Gallery,
    LineRecords,
    Reference,
    content_security_policy,
    gather,
    read_records,
    render,
    write_page,
)
from kling_cli.gallery.files import line_record

FULL = Card(
    file="0001-video_A.mp4",
    size=5272,
    line=1,
    prompt="a red fox running through snow",
    model="kling-v3-omni",
    mode="pro",
    duration="10",
    aspect_ratio="9:16",
    references=(
        Reference("first frame", "https://example.com/img/first%20frame.png"),
        Reference("video", "https://example.com/dance.mp4"),
        Reference("element", None, "42"),
    ),
    task_id="video_A",
    status="completed",
    created_at=1796379288.0,
    completed_at=1796379291.0,
    source="sidecar",
)
FAILED = Card(
    line=2,
    prompt="[fail] a storm",
    task_id="video_B",
    status="failed",
    error="the prompt asked to fail (content_policy)",
    created_at=1796379280.0,
    source="record",
)


def page_of(*cards: Card, **kw: Any) -> str:
    return render(Gallery("out", cards, generated_at=1796379300.0), **kw)


def articles(page: str) -> list[str]:
    return re.findall(r"<article .*?</article>", page, re.S)


# --- render ---------------------------------------------------------------------------------


def test_a_card_shows_the_player_and_every_field_it_knows() -> None:
    (card,) = articles(page_of(FULL))
    assert '<video class="player ar-9x16" controls preload="metadata" src="0001-video_A.mp4">' in (
        card
    )
    for text in (
        "a red fox running through snow",
        "<dt>line</dt><dd>1</dd>",
        "<dt>status</dt><dd>completed</dd>",
        "<dt>mode</dt><dd>pro</dd>",
        "<dt>duration</dt><dd>10 s</dd>",
        "<dt>aspect ratio</dt><dd>9:16</dd>",
        "<dt>model</dt><dd>kling-v3-omni</dd>",
        "<code>video_A</code>",
        '<time datetime="2026-12-04T10:14:48Z">2026-12-04 10:14:48 UTC</time>',
        '<time datetime="2026-12-04T10:14:51Z">2026-12-04 10:14:51 UTC</time>',
        '<a href="0001-video_A.mp4">0001-video_A.mp4</a> (5.3 kB)',
        # references: links (never loaded), named by their file; an element id as text
        '<a href="https://example.com/img/first%20frame.png"',
        ">first frame: first frame.png</a>",
        ">video: dance.mp4</a>",
        "element: 42",
    ):
        assert text in card, text
    assert 'data-line="1"' in card and 'data-time="1796379288"' in card


def test_a_line_without_a_video_is_a_card_with_its_error_and_no_player() -> None:
    (card,) = articles(page_of(FAILED))
    assert "<video" not in card and 'class="card failed"' in card
    assert "no video: failed" in card
    assert '<p class="error">the prompt asked to fail (content_policy)</p>' in card
    assert "<dt>line</dt><dd>2</dd>" in card and "<code>video_B</code>" in card


def test_what_nothing_knew_is_left_out() -> None:
    (card,) = articles(page_of(Card(file="clip.mp4", size=12)))
    assert "prompt not known" in card and "(12 bytes)" in card
    for name in ("line", "status", "mode", "task", "created", "references"):
        assert f"<dt>{name}</dt>" not in card


HOSTILE = "<script>alert(1)</script> & \"quotes\" 'single' <img src=x onerror=alert(2)>"


def test_user_and_service_text_is_text() -> None:
    card = Card(
        file='a "b" <c>.mp4',
        prompt=HOSTILE,
        error=HOSTILE,
        task_id=HOSTILE,
        status=HOSTILE,
        mode=HOSTILE,
        references=(Reference("image", 'https://x.example/"><script>alert(3)</script>'),),
        created_at=HOSTILE,
    )
    page = render(Gallery(HOSTILE, (card,)))
    assert page.count("<script") == 1  # the page's own, at the end
    assert "<img" not in page  # its onerror= is text inside a paragraph
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;quotes&quot;" in page
    # the file name: quoted as a URL in src and href, escaped as text
    assert 'src="a%20%22b%22%20%3Cc%3E.mp4"' in page
    assert "a &quot;b&quot; &lt;c&gt;.mp4</a>" in page


def test_only_http_references_become_links() -> None:
    refs = (
        Reference("image", "javascript:alert(1)"),
        Reference("image", "data:image/png;base64,AAAA"),
        Reference("image", "file:///etc/passwd"),
        Reference("image", "HTTPS://example.com/a.png"),
        Reference("image", "http://[oops/a.png"),
    )
    (card,) = articles(page_of(Card(file="v.mp4", references=refs)))
    links = re.findall(r'<a href="([^"]*)"', card)
    assert links == ["HTTPS://example.com/a.png", "v.mp4"]
    assert "image: javascript:alert(1)" in card


@pytest.mark.parametrize(
    "name, src",
    [
        ("0001-video_x.mp4", "0001-video_x.mp4"),
        ("a b#1?.mp4", "a%20b%231%3F.mp4"),
        ("ü.mp4", "%C3%BC.mp4"),
        ("50%.mp4", "50%25.mp4"),
    ],
)
def test_videos_are_linked_relatively_by_name(name: str, src: str) -> None:
    (card,) = articles(page_of(Card(file=name)))
    assert f'src="{src}"' in card and f'href="{src}"' in card


def test_the_first_screen_loads_metadata_the_rest_on_scroll() -> None:
    cards = [Card(file=f"{n:04d}.mp4", line=n) for n in range(1, 13)]
    page = page_of(*cards, eager=4)
    loads = re.findall(r'preload="(\w+)"( data-lazy)?', page)
    assert loads == [("metadata", "")] * 4 + [("none", " data-lazy")] * 8


def inline(page: str, tag: str) -> str:
    (text,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
    return text


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_policy_allows_the_inline_style_and_script_by_hash_and_nothing_remote() -> None:
    page = page_of(FULL, FAILED)
    (policy,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    policy = policy.replace("&#x27;", "'")
    assert policy == content_security_policy()
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == sha256(inline(page, "script"))
    assert directives["style-src"] == sha256(inline(page, "style"))
    assert directives["media-src"] == "'self' file:"
    assert "unsafe" not in policy and "http" not in policy


def test_the_page_loads_nothing_from_anywhere_but_its_folder() -> None:
    page = page_of(FULL, FAILED)
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert sources == ["0001-video_A.mp4"]
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert '<meta name="referrer" content="no-referrer">' in page


def test_the_controls_need_the_script_and_start_hidden() -> None:
    page = page_of(FULL)
    assert '<div id="controls" class="controls" hidden>' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "[hidden]{display:none!important}" in page


def test_an_empty_folder_says_so() -> None:
    page = render(Gallery("out", ()))
    assert "No videos in this folder yet." in page and "0 videos" in page


@given(st.text())
def test_no_text_of_a_card_ever_becomes_markup(text: str) -> None:
    card = Card(file=text or "x", prompt=text, error=text, task_id=text, status=text)
    page = render(Gallery(text, (card,)))
    assert page.count("<script") == 1
    (article,) = articles(page)
    # every tag in the card is one of the page's own
    tags = set(re.findall(r"<(/?[a-z]+)", article))
    assert tags <= {"article", "/article", "video", "/video", "div", "/div", "p", "/p", "dl",
                    "/dl", "dt", "/dt", "dd", "/dd", "code", "/code", "a", "/a"}  # fmt: skip


def test_times_as_the_service_gave_them() -> None:
    ms = Card(file="a.mp4", created_at=1796379288000.0)  # milliseconds
    iso = Card(file="b.mp4", created_at="2026-12-04T10:14:48Z")
    odd = Card(file="c.mp4", created_at="yesterday")
    page = page_of(ms, iso, odd)
    assert "2026-12-04 10:14:48 UTC" in page
    assert '<time datetime="2026-12-04T10:14:48Z">2026-12-04T10:14:48Z</time>' in page
    assert "<dt>created</dt><dd>yesterday</dd>" in page
    assert page.count('data-time="1796379288"') == 2


# --- gather ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    id: str
    params: dict[str, Any]
    files: list[str]
    status: str = "completed"
    error: str | None = None
    submitted_at: float = 1796379000.0
    task: dict[str, Any] = field(default_factory=dict)


def sidecar(folder: Path, video: str, **fields: Any) -> None:
    doc = {
        "line": 1,
        "task_id": "video_S",
        "prompt": "from the sidecar",
        "parameters": {"prompt": "from the sidecar", "mode": "pro", "aspect_ratio": "1:1"},
        "video_file": video,
        "created_at": 1796379288,
        "completed_at": 1796379291,
        **fields,
    }
    (folder / video).with_suffix(".json").write_text(json.dumps(doc))


class Journal:
    def __init__(self, *tasks: Task):
        self.tasks = tasks
        self.reads = 0

    def __call__(self) -> list[Task]:
        self.reads += 1
        return list(self.tasks)


def test_a_card_a_video_from_its_sidecar_else_the_journal_else_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("0001-video_S.mp4", "0002-video_J.mp4", "alone.webm", "named"):
        (folder / name).write_bytes(b"\0" * 10)
    sidecar(folder, "0001-video_S.mp4")
    sidecar(folder, "named", line=3, task_id="video_N", prompt="no suffix")
    body = {"prompt": "from the journal", "duration": 5, "image_urls": ["https://x/a.png"]}
    journal = Journal(
        Task("video_J", body, [str(folder / "0002-video_J.mp4")], task={"created_at": 5}),
        Task("video_OLD", {"prompt": "older"}, [str(folder / "0002-video_J.mp4")]),
        Task("video_ELSEWHERE", {"prompt": "x"}, [str(tmp_path / "alone.webm")]),
    )
    (folder / "notes.txt").write_text("not a video")
    (folder / ".hidden.mp4").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.mp4").write_bytes(b"")
    shown = gather(folder, journal, now=1.0)
    by_file = {card.file: card for card in shown.cards}
    assert list(by_file) == ["0001-video_S.mp4", "0002-video_J.mp4", "named", "alone.webm"]
    s = by_file["0001-video_S.mp4"]
    assert (s.source, s.line, s.prompt, s.mode, s.aspect_ratio, s.status, s.size) == (
        "sidecar", 1, "from the sidecar", "pro", "1:1", "completed", 10
    )  # fmt: skip
    assert (s.created_at, s.completed_at, s.task_id) == (1796379288.0, 1796379291.0, "video_S")
    j = by_file["0002-video_J.mp4"]
    assert (j.source, j.task_id, j.prompt, j.duration, j.line) == (
        "journal", "video_J", "from the journal", "5", 2
    )  # fmt: skip
    assert j.references == (Reference("image", "https://x/a.png"),)
    assert j.created_at == 5.0
    assert by_file["named"].prompt == "no suffix" and by_file["named"].line == 3
    assert by_file["alone.webm"] == Card(file="alone.webm", size=10)
    assert journal.reads == 1
    assert (shown.title, shown.generated_at, shown.videos) == ("out", 1.0, 4)


def test_the_journal_is_read_only_when_a_file_needs_it(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    sidecar(tmp_path, "a.mp4")
    (tmp_path / PAGE).write_text("<!doctype html>")
    (tmp_path / "results.jsonl").write_text("{}\n")
    journal = Journal()
    gather(tmp_path, journal)
    assert journal.reads == 0
    (tmp_path / "b.mp4").write_bytes(b"")
    gather(tmp_path, journal)
    assert journal.reads == 1


def test_a_damaged_or_foreign_sidecar_is_not_one(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text(json.dumps({"video_file": "c.mp4", "prompt": "c's"}))
    (tmp_path / "c.json").write_text(json.dumps(["a list"]))
    cards = gather(tmp_path).cards
    assert [(c.file, c.source) for c in cards] == [("a.mp4", "file"), ("b.mp4", "file"),
                                                   ("c.mp4", "file")]  # fmt: skip


def test_sidecar_fields_of_the_wrong_type_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    sidecar(tmp_path, "a.mp4", line="one", prompt={"x": 1}, parameters=[1], created_at=True)
    (card,) = gather(tmp_path).cards
    assert (card.line, card.prompt, card.mode, card.created_at) == (None, None, None, None)
    render(Gallery("x", (card,)))


def test_references_in_every_form_of_the_request(tmp_path: Path) -> None:
    body = {
        "metadata": {
            "image_list": [
                {"image_url": "https://x/first.png", "type": "first_frame"},
                {"image_url": "https://x/ref.png"},
                {"image_url": "https://x/end.png", "type": "end_frame"},
            ],
            "element_list": [{"element_id": 42}, {"url": "https://x/e.mp4", "type": "video"}],
        },
        "video_list": [{"video_url": "https://x/v.mp4", "refer_type": "base"}],
    }
    (tmp_path / "a.mp4").write_bytes(b"")
    sidecar(tmp_path, "a.mp4", parameters=body)
    (card,) = gather(tmp_path).cards
    assert card.references == (
        Reference("first frame", "https://x/first.png"),
        Reference("image", "https://x/ref.png"),
        Reference("end frame", "https://x/end.png"),
        Reference("video", "https://x/v.mp4"),
        Reference("element", None, "42"),
        Reference("element", "https://x/e.mp4"),
    )


def test_records_of_lines_without_a_video_are_cards_in_line_order(tmp_path: Path) -> None:
    (tmp_path / "0001-video_A.mp4").write_bytes(b"")
    sidecar(tmp_path, "0001-video_A.mp4", line=1, task_id="video_A")
    (tmp_path / "0003-video_C.mp4").write_bytes(b"")
    sidecar(tmp_path, "0003-video_C.mp4", line=3, task_id="video_C")
    records = tmp_path / RECORDS
    records.mkdir()
    failed = {"line": 2, "task_id": "video_B", "prompt": "[fail] x", "status": "failed",
              "error": "it failed", "parameters": {"mode": "std"}}  # fmt: skip
    (records / "0002-aaaaaaaaaaaa.json").write_text(json.dumps(failed))
    stale = {"line": 3, "task_id": "video_C", "status": "in_progress", "error": "timed out"}
    (records / "0003-bbbbbbbbbbbb.json").write_text(json.dumps(stale))  # its video is here now
    (records / "0004-cccccccccccc.json").write_text("{damaged")
    cards = gather(tmp_path).cards
    assert [(c.line, c.file, c.status) for c in cards] == [
        (1, "0001-video_A.mp4", "completed"),
        (2, None, "failed"),
        (3, "0003-video_C.mp4", "completed"),
    ]
    assert (cards[1].error, cards[1].mode, cards[1].source) == ("it failed", "std", "record")


# --- the files ------------------------------------------------------------------------------


def test_the_page_is_replaced_atomically_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    first = write_page(folder, page_of(FULL))
    assert first == folder / PAGE
    inode = first.stat().st_ino
    second = write_page(folder, page_of(FAILED))
    assert second.read_text() == page_of(FAILED)
    assert second.stat().st_ino != inode  # a new file renamed over the old, not rewritten
    assert sorted(p.name for p in folder.iterdir()) == [PAGE]  # no temporary file left
    assert second.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_page_kling_did_not_write_is_left_alone_unless_forced(tmp_path: Path) -> None:
    (tmp_path / PAGE).write_text("<h1>my own page</h1>")
    with pytest.raises(UsageError, match="not written by kling"):
        write_page(tmp_path, page_of(FULL))
    assert (tmp_path / PAGE).read_text() == "<h1>my own page</h1>"
    write_page(tmp_path, page_of(FULL), force=True)
    assert "kling gallery" in (tmp_path / PAGE).read_text()


def test_a_page_that_cannot_be_written_is_a_local_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(LocalFileError, match="No space left on device"):
        write_page(folder, page_of(FULL))
    assert list(folder.iterdir()) == []


def line(number: int, code: int, **kw: Any) -> SimpleNamespace:
    """What LineRecords reads of a batch line."""
    view = kw.pop("view", NOT_SEEN)
    error = kw.pop("error", None)
    return SimpleNamespace(
        number=number,
        key=f"{number:02d}" + "f" * 62,
        task_id=kw.pop("task_id", None),
        request=SimpleNamespace(prompt=kw.pop("prompt", "a fox")),
        body={"prompt": "a fox", "mode": "std"},
        view=view,
        error=error,
        code=code,
        why_not_completed=lambda: "still running",
    )


def test_a_line_without_a_video_leaves_a_record_and_a_later_video_removes_it(
    tmp_path: Path,
) -> None:
    warnings: list[str] = []
    records = LineRecords(tmp_path, warnings.append)
    failed = TaskView.of(
        {"id": "video_B", "status": "failed", "created_at": 7, "error": {"message": "no"}}
    )
    records(line(2, 6, view=failed, task_id="video_B"))
    records(line(3, 2, error=UsageError("refused")))
    (doc2, doc3) = read_records(tmp_path)
    assert doc2["line"] == 2 and doc2["status"] == "failed" and doc2["error"] == "no"
    assert doc2["task_id"] == "video_B" and doc2["created_at"] == 7 and doc2["exit_code"] == 6
    assert doc2["parameters"] == {"prompt": "a fox", "mode": "std"}
    assert doc3["status"] == "error" and doc3["error"] == "refused" and doc3["task_id"] is None
    records(line(2, 0))  # a later run of line 2 saved its video
    assert [d["line"] for d in read_records(tmp_path)] == [3]
    assert warnings == []


def test_a_record_that_cannot_be_written_is_warned_of_once(tmp_path: Path) -> None:
    (tmp_path / RECORDS).write_text("a file where the folder goes")
    warnings: list[str] = []
    records = LineRecords(tmp_path, warnings.append)
    records(line(1, 6))
    records(line(2, 6))
    assert len(warnings) == 1 and "line 1" in warnings[0]


def test_a_line_record_says_why_a_running_task_made_no_video() -> None:
    running = TaskView.of({"id": "video_R", "status": "in_progress"})
    doc = line_record(line(4, 7, view=running, task_id="video_R"))  # type: ignore[arg-type]
    assert (doc["status"], doc["error"], doc["exit_code"]) == ("in_progress", "still running", 7)
