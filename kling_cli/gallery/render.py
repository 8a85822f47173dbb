"""The page: plain data in, one self-contained HTML string out (pure functions, no files).

Everything a user or the service wrote (prompts, errors, file names, task ids, URLs) goes
through `html.escape` on its way in: a prompt of `<script>` shows as those characters. The
page loads nothing from the network: its style and its few lines of script are inline,
allowed by their hashes in a Content-Security-Policy that forbids every other source but
the videos beside it. Without script the cards, players and links all work; the script adds
the filter, the sort, and the loading of each video's metadata as it scrolls into view.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from datetime import datetime, timezone
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

from .. import __version__
from ..text import utf8_safe
from .model import Card, Gallery, Reference

GENERATOR = "kling gallery"  # <meta name="generator">: how a page kling wrote is known again
EAGER = 8  # cards whose video loads its metadata at once: about a first screen

STYLE = """\
:root{color-scheme:light dark;font-family:system-ui,sans-serif;line-height:1.4}
body{margin:0 auto;padding:1rem;max-width:1800px}
[hidden]{display:none!important}
h1{font-size:1.3rem;margin:0 0 .25rem;overflow-wrap:anywhere}
.summary{margin:0 0 .75rem;opacity:.75}
.controls{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:0 0 1rem}
.controls input{width:18rem;max-width:100%;font:inherit}
.controls select{font:inherit}
.cards{display:grid;gap:1rem;align-items:start;
grid-template-columns:repeat(auto-fill,minmax(min(100%,20rem),1fr))}
.card{border:1px solid #8886;border-radius:8px;overflow:hidden;min-width:0}
.card.failed{border-color:#c62828}
.player{display:block;width:100%;aspect-ratio:16/9;background:#000;object-fit:contain}
.ar-9x16{aspect-ratio:9/16;max-height:70vh}
.ar-1x1{aspect-ratio:1/1}
.novideo{padding:.9rem .75rem;background:#7f1d1d;color:#fff;font-weight:600}
.meta{padding:.6rem .75rem .75rem}
.prompt{margin:0 0 .5rem;white-space:pre-wrap;overflow-wrap:anywhere}
.prompt.unknown{opacity:.6;font-style:italic}
.error{margin:0 0 .5rem;color:#c62828;white-space:pre-wrap;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.1rem .75rem;margin:0;
font-size:.85rem}
dt{opacity:.7}
dd{margin:0;overflow-wrap:anywhere}
.empty{opacity:.75}
@media (max-width:480px){body{padding:.5rem}.cards{gap:.5rem}}
"""

SCRIPT = """\
"use strict";
(() => {
  const grid = document.getElementById("cards");
  const controls = document.getElementById("controls");
  if (!grid || !controls) return;
  const cards = Array.from(grid.children);
  const text = new Map(cards.map((c) => [c, c.textContent.toLowerCase()]));
  const place = new Map(cards.map((c, i) => [c, i]));
  const filter = document.getElementById("filter");
  const sort = document.getElementById("sort");
  const shown = document.getElementById("shown");
  const num = (c, key, none) => {
    const v = parseFloat(c.dataset[key]);
    return Number.isNaN(v) ? none : v;
  };
  const prompt = (c) => c.querySelector(".prompt:not(.unknown)")?.textContent;
  const then = (a, b) => place.get(a) - place.get(b);
  const byPrompt = (a, b) => (prompt(a) === undefined) - (prompt(b) === undefined)
    || (prompt(a) ?? "").localeCompare(prompt(b) ?? "") || then(a, b);
  const orders = {
    line: (a, b) => num(a, "line", Infinity) - num(b, "line", Infinity) || then(a, b),
    prompt: byPrompt,
    time: (a, b) => num(b, "time", -Infinity) - num(a, "time", -Infinity) || then(a, b),
  };
  const apply = () => {
    const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let n = 0;
    for (const c of cards) {
      const hit = words.every((w) => text.get(c).includes(w));
      c.hidden = !hit;
      n += hit ? 1 : 0;
    }
    shown.textContent = n === cards.length ? `${n} shown` : `${n} of ${cards.length} shown`;
  };
  filter.addEventListener("input", apply);
  sort.addEventListener("change", () => {
    grid.append(...cards.slice().sort(orders[sort.value] ?? orders.line));
  });
  controls.hidden = false;
  apply();
  if ("IntersectionObserver" in window) {
    const seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        seen.unobserve(entry.target);
        if (entry.target.preload === "none") entry.target.preload = "metadata";
      }
    }, { rootMargin: "600px 0px" });
    grid.querySelectorAll("video[data-lazy]").forEach((v) => seen.observe(v));
  }
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy() -> str:
    """Nothing but the inline style and script (by their hashes) and media of the page's own
    origin. Opened from the disk, Chromium's 'self' is every file: URL (tried: a video in
    another folder loads, one over http:// is refused); a spec-minded browser gives a file:
    page an opaque origin that 'self' never matches, hence `file:` beside it. Either way no
    request leaves the machine, and the page itself names only files in its own folder."""
    return "; ".join(
        [
            "default-src 'none'",
            "media-src 'self' file:",
            f"style-src {_sha256(STYLE)}",
            f"script-src {_sha256(SCRIPT)}",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def render(gallery: Gallery, eager: int = EAGER) -> str:
    """The whole page. `eager`: how many cards, from the top, load their video's metadata at
    once; the others wait until they scroll into view (or their play button is pressed)."""
    e = _e
    title = gallery.title or "videos"
    cards = "\n".join(card_html(card, i, i < eager) for i, card in enumerate(gallery.cards))
    body = cards or '<p class="empty">No videos in this folder yet.</p>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{e(content_security_policy())}">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="{GENERATOR}">
<title>{e(title)}: kling gallery</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{e(title)}</h1>
<p class="summary">{e(summary(gallery))}</p>
<div id="controls" class="controls" hidden>
<label>Filter <input id="filter" type="search" placeholder="prompt, file, task, status"></label>
<label>Sort <select id="sort"><option value="line">by line</option>\
<option value="prompt">by prompt</option><option value="time">newest first</option></select>\
</label>
<output id="shown"></output>
</div>
</header>
<main id="cards" class="cards">
{body}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def summary(gallery: Gallery) -> str:
    videos = gallery.videos
    parts = [f"{videos} video{'' if videos == 1 else 's'}"]
    if gallery.without_video:
        n = gallery.without_video
        parts.append(f"{n} line{'' if n == 1 else 's'} without one")
    when = _when(gallery.generated_at) if gallery.generated_at else None
    written = f"written {when.text}" if when else "written"
    return ", ".join(parts) + f"; {written} by kling {__version__}"


def card_html(card: Card, index: int, eager: bool = True) -> str:
    """One card: the player (or, for a line that made no video, its error), then what made
    it, as far as anything knew."""
    e = _e
    attrs = [f'class="card{" failed" if card.file is None else ""}"', f'id="card-{index + 1}"']
    if card.line is not None:
        attrs.append(f'data-line="{card.line}"')
    created = _when(card.created_at)
    when = created or _when(card.completed_at)
    if when and when.seconds is not None:
        attrs.append(f'data-time="{when.seconds:.0f}"')
    ratio = _ratio_class(card.aspect_ratio)
    # A name, never a path; its bytes as they are on disk (one that is not UTF-8 too).
    src = e(quote(os.fsencode(card.file), safe="")) if card.file is not None else ""
    if card.file is not None:
        load = 'preload="metadata"' if eager else 'preload="none" data-lazy'
        media = f'<video class="player{ratio}" controls {load} src="{src}"></video>'
    else:
        media = f'<div class="novideo">no video: {e(card.status or "error")}</div>'
    rows: list[tuple[str, str]] = []
    if card.line is not None:
        rows.append(("line", str(card.line)))
    if card.status:
        rows.append(("status", e(card.status)))
    for name, value in (
        ("mode", card.mode),
        ("duration", f"{card.duration} s" if card.duration else None),
        ("aspect ratio", card.aspect_ratio),
        ("model", card.model),
    ):
        if value:
            rows.append((name, e(value)))
    if card.references:
        rows.append(("references", ", ".join(_reference(r) for r in card.references)))
    if card.task_id:
        rows.append(("task", f"<code>{e(card.task_id)}</code>"))
    for name, moment in (("created", created), ("completed", _when(card.completed_at))):
        if moment and moment.machine:
            rows.append((name, f'<time datetime="{e(moment.machine)}">{e(moment.text)}</time>'))
        elif moment:
            rows.append((name, e(moment.text)))
    if card.file is not None:
        size = f" ({_size(card.size)})" if card.size is not None else ""
        rows.append(("file", f'<a href="{src}">{e(card.file)}</a>{size}'))
    prompt = (
        f'<p class="prompt">{e(card.prompt)}</p>'
        if card.prompt
        else '<p class="prompt unknown">prompt not known</p>'
    )
    error = f'<p class="error">{e(card.error)}</p>' if card.error else ""
    facts = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return (
        f'<article {" ".join(attrs)}>{media}<div class="meta">{prompt}{error}'
        f"<dl>{facts}</dl></div></article>"
    )


def _e(text: str) -> str:
    """Text on the page, escaped; a file name's bytes that are not UTF-8 shown as `\\xe9`."""
    return html.escape(utf8_safe(text), quote=True)


def _ratio_class(aspect_ratio: str | None) -> str:
    return {"9:16": " ar-9x16", "1:1": " ar-1x1"}.get(aspect_ratio or "", "")


def _reference(ref: Reference) -> str:
    """A link for an http(s) URL (never loaded: a link, not an <img>); anything else, such as
    an element id or a URL of another scheme, as text."""
    try:
        parts = urlsplit(ref.url) if ref.url else None
    except ValueError:  # `http://[oops`: not a URL to follow
        parts = None
    if ref.url and parts and parts.scheme.lower() in ("http", "https"):
        name = unquote(parts.path.rstrip("/").rpartition("/")[2]) or parts.netloc or ref.url
        text = f"{ref.kind}: {_cut(name, 40)}"
        return (
            f'<a href="{_e(ref.url)}" title="{_e(ref.url)}" target="_blank" '
            f'rel="noopener noreferrer">{_e(text)}</a>'
        )
    return _e(f"{ref.kind}: {_cut(ref.label or ref.url or '?', 60)}")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


class Moment(NamedTuple):
    machine: str  # for <time datetime>: ISO 8601, or "" when the text is not that
    text: str
    seconds: float | None  # for sorting


def _when(value: float | str | None) -> Moment | None:
    """A time as the page shows it: Unix seconds (milliseconds where the number is that
    large) in UTC; a text from the service as it came."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else float(value)
        try:
            moment = datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        return Moment(
            moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
            seconds,
        )
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(re.sub(r"Z$", "+00:00", text))
    except ValueError:
        return Moment("", text, None)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return Moment(text, text, parsed.timestamp())


def _size(size: int) -> str:
    """`812 bytes`, `4.3 kB`, `12.5 MB`: decimal units, as the download bar shows them."""
    if size < 1000:
        return f"{size} bytes"
    value, unit = size / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
