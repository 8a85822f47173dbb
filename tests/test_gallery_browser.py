"""The gallery in a real browser: Debian's Chromium, headless, driven by Playwright for Python
(never a browser of Playwright's own download), opening index.html from file:// over a folder
that a real `kling --sandbox batch --sidecar --gallery` run made.

Skips, saying why, where Playwright or a Chromium is missing (.ci/run installs Debian's
chromium package; Playwright comes with the test extra). Screenshots go to the test's temp
folder (a CI artifact); with KLING_GALLERY_PNG=PATH the desktop one is also copied to PATH:
`KLING_GALLERY_PNG=docs/gallery.png python -m pytest tests/test_gallery_browser.py` makes
the README's picture.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

# What Chromium needs on this machine (and in CI, as root, with no network): no sandbox, no
# GPU, and none of the background connections it would make at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 15_000
# Read at import: the tests' own fixture (conftest.py) clears every KLING_ variable.
SAVE_PNG = os.environ.get("KLING_GALLERY_PNG")

ROWS = [
    {"prompt": "a red fox running through snow, golden hour", "refs": ["https://example.com/fox.png"]},
    {"prompt": "[fail] a storm over the harbour", "aspect_ratio": "9:16"},
    {"prompt": "a calm lake at dawn, mist on the water", "aspect_ratio": "1:1", "mode": "pro"},
    {"prompt": "<script>alert(1)</script> is a prompt, not markup", "duration": 10},
    {"prompt": "a paper boat on a rainy street", "aspect_ratio": "9:16"},
    {"prompt": "timelapse of clouds over mountains", "first_frame": "https://example.com/a.png"},
    {"prompt": "a hummingbird in slow motion", "aspect_ratio": "1:1"},
    {"prompt": "city lights from a night train", "videos": ["https://example.com/train.mp4"]},
    {"prompt": "a fox cub asleep in the grass", "mode": "pro", "duration": 10},
]  # fmt: skip
COPIES = 12  # more videos than a screen holds, some with names a URL must quote


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here: install Debian's `chromium` package (.ci/run does)")


@pytest.fixture
def playwright() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
    )
    executable = chromium()
    with sync_api.sync_playwright() as pw:
        # Each launch gets a new, empty profile folder of Playwright's own.
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def folder(kling, tmp_path: Path) -> Path:
    """A folder a real batch made in the sandbox (the in-process one, on the test's clock),
    with copies of its videos under names a URL must quote, and the page rewritten over
    them by `kling gallery`."""
    src = tmp_path / "examples.jsonl"
    src.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    out = tmp_path / "videos"
    result = kling("--sandbox", "--no-progress", "batch", str(src), "-o", str(out), "--sidecar",
                   "--gallery", "--interval", "0.1")  # fmt: skip
    assert result.exit_code == 6, result.stderr  # the [fail] line
    assert (out / "index.html").exists()
    videos = sorted(out.glob("*.mp4"))
    assert len(videos) == len(ROWS) - 1
    for n in range(COPIES):
        shutil.copy(videos[n % len(videos)], out / f"copy {n:02d} #ü%.mp4")
    again = kling("gallery", str(out), "-q")
    assert again.exit_code == 0, again.stderr
    return out


class Watch:
    """What a page did: its requests, console errors, uncaught errors and dialogs."""

    def __init__(self, page: Any):
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", lambda dialog: self.errors.append(f"dialog: {dialog.message}"))


def test_every_video_plays_from_the_disk_and_nothing_leaves_the_folder(
    playwright: Any, folder: Path, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    context = playwright.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    watch = Watch(page)
    page.goto((folder / "index.html").as_uri())
    cards = page.locator("article.card")
    expected = len(ROWS) + COPIES
    assert cards.count() == expected
    videos = page.locator("video")
    assert videos.count() == expected - 1  # the [fail] line has no player
    # Past the first screen, videos wait to be scrolled to.
    waiting = page.evaluate(
        "[...document.querySelectorAll('video')].filter(v => v.readyState === 0"
        " && v.preload === 'none').length"
    )
    assert waiting > 0
    page.screenshot(path=str(tmp_path / "gallery.png"))
    if SAVE_PNG:  # relative to where pytest was started
        shutil.copy(tmp_path / "gallery.png", pytestconfig.invocation_params.dir / SAVE_PNG)
    for i in range(videos.count()):
        video = videos.nth(i)
        video.scroll_into_view_if_needed()
        video.evaluate(
            "v => new Promise((ok, fail) => {"
            "  const done = () => v.readyState >= 1 && v.duration > 0;"
            "  if (done()) return ok();"
            "  v.addEventListener('loadedmetadata', () => done() ? ok() : fail('no duration'));"
            "  v.addEventListener('error', () => fail('error ' + (v.error && v.error.code)));"
            f"  setTimeout(() => fail('no metadata: ' + v.currentSrc), {WAIT_MS});"
            "})"
        )
        state = video.evaluate("v => [v.readyState, v.duration]")
        assert state[0] >= 1 and state[1] > 0, (i, state)
    inside = folder.as_uri() + "/"
    assert watch.requests and all(url.startswith(inside) for url in watch.requests), watch.requests
    assert watch.errors == []
    assert page.title() == "videos: kling gallery"  # the prompt's <script> never ran
    assert "<script>alert(1)</script> is a prompt" in page.locator("article").nth(3).inner_text()
    context.close()


def test_the_filter_hides_cards_and_the_sort_orders_them(playwright: Any, folder: Path) -> None:
    page = playwright.new_page(viewport={"width": 1200, "height": 800})
    watch = Watch(page)
    page.goto((folder / "index.html").as_uri())
    visible = page.locator("article.card:visible")
    total = len(ROWS) + COPIES
    assert visible.count() == total
    page.fill("#filter", "fox")
    foxes = [row for row in ROWS if "fox" in row["prompt"]]
    assert visible.count() == len(foxes) == 2
    assert page.locator("#shown").inner_text() == f"2 of {total} shown"
    page.fill("#filter", "storm failed")  # every word, anywhere in the card
    assert visible.count() == 1
    assert "sandbox: the prompt asked to fail" in visible.first.inner_text()
    page.fill("#filter", "no such thing")
    assert visible.count() == 0
    page.fill("#filter", "")
    assert visible.count() == total
    page.select_option("#sort", "prompt")
    prompts = page.locator("article.card .prompt").all_inner_texts()
    known = [p for p in prompts if p != "prompt not known"]
    assert len(known) == len(ROWS) and prompts[len(known) :] == ["prompt not known"] * COPIES
    in_order = "ps => ps.every((p, i) => i === 0 || ps[i - 1].localeCompare(p) <= 0)"
    assert page.evaluate(in_order, known)  # as the browser's collation has it
    assert known.index("a calm lake at dawn, mist on the water") < known.index(
        "a red fox running through snow, golden hour"
    )
    page.select_option("#sort", "line")
    lines = page.eval_on_selector_all("article.card", "cs => cs.map(c => c.dataset.line)")
    assert lines[: len(ROWS)] == [str(n) for n in range(1, len(ROWS) + 1)]
    assert watch.errors == []


def test_with_scripts_off_every_card_shows_and_the_first_videos_load(
    playwright: Any, folder: Path
) -> None:
    viewport = {"width": 1200, "height": 800}
    context = playwright.new_context(java_script_enabled=False, viewport=viewport)
    page = context.new_page()
    page.goto((folder / "index.html").as_uri())
    assert page.locator("article.card:visible").count() == len(ROWS) + COPIES
    assert not page.locator("#controls").is_visible()  # the filter needs the script
    # The players need no script: the first screen's metadata comes in (Playwright's own
    # evaluate runs apart from the page's scripts, which stay off).
    first = page.locator("video").first
    deadline = time.monotonic() + WAIT_MS / 1000
    while first.evaluate("v => v.readyState") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.evaluate("v => [v.readyState >= 1, v.duration > 0]") == [True, True]
    context.close()


def test_a_phone_screen_reads_without_scrolling_sideways(
    playwright: Any, folder: Path, tmp_path: Path
) -> None:
    page = playwright.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2)
    page.goto((folder / "index.html").as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("article.card").first.bounding_box()
    assert box is not None and box["width"] <= 375
    page.screenshot(path=str(tmp_path / "gallery-phone.png"))
