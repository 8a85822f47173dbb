"""What the page shows, gathered from a folder: its videos, the sidecar beside each (what
`batch --sidecar` wrote), the journal's record of the task that saved it, and the records
`batch --gallery` left of the lines that made no video. The one function here that reads
anything; the journal comes in as a callable, read only when a file needs it."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from .files import PAGE, read_records
from .model import Card, Gallery, Reference

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm"})
SIDECAR_LIMIT = 1 << 20  # bytes: a sidecar is a few hundred; a bigger JSON file is not one
NOT_VIDEOS = frozenset({".json", ".html", ".jsonl", ".txt", ".log", ".md", ".csv"})


class JournalTask(Protocol):
    """What the gallery reads of a journal entry (kling_cli.store.journal.Entry has it all)."""

    @property
    def id(self) -> str: ...
    @property
    def submitted_at(self) -> float: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def files(self) -> list[str]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def task(self) -> dict[str, Any]: ...


Journal = Callable[[], Iterable[JournalTask]]


def gather(folder: Path, journal: Journal | None = None, now: float | None = None) -> Gallery:
    """The cards of `folder`, in line order (cards without a line after, by file name).

    A video is a file with a video suffix (.mp4, .m4v, .mov, .webm), or any file a sidecar or
    the journal names as one. What made it comes from its sidecar `NAME.json`, else from the
    journal's task whose saved files include it (`journal()` is called once, and only when
    a file is not explained by a sidecar), else nothing but its name and size. Only the
    folder's own files count (not its subfolders, nor hidden files); no video is opened.

    Raises OSError when the folder cannot be listed."""
    sizes: dict[str, int] = {}
    with os.scandir(folder) as listing:
        for entry in listing:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_file():
                    sizes[entry.name] = entry.stat().st_size
            except OSError:  # gone, or a broken link: not a video to show
                continue
    sidecars = _sidecars(folder, sizes)
    videos = {name for name in sizes if Path(name).suffix.lower() in VIDEO_SUFFIXES}
    videos.update(sidecars)
    explained = {*sidecars, *(Path(v).with_suffix(".json").name for v in sidecars), PAGE}
    tasks: dict[str, JournalTask] = {}
    if journal is not None and any(
        name not in explained and (name in videos or Path(name).suffix.lower() not in NOT_VIDEOS)
        for name in sizes
    ):
        tasks = _tasks_by_file(folder, journal(), sizes)
        videos.update(tasks)
    cards = []
    for name in videos:
        if name in sidecars:
            cards.append(_from_sidecar(name, sizes[name], sidecars[name]))
        elif name in tasks:
            cards.append(_from_journal(name, sizes[name], tasks[name]))
        else:
            cards.append(Card(file=name, size=sizes[name]))
    shown = {card.task_id for card in cards if card.task_id}
    for record in read_records(folder):
        card = _from_record(record)
        if card.task_id is None or card.task_id not in shown:  # else: done since
            cards.append(card)
    cards.sort(key=_order)
    return Gallery(
        title=folder.resolve().name,
        cards=tuple(cards),
        generated_at=time.time() if now is None else now,
    )


def _order(card: Card) -> tuple[bool, int, str, str]:
    return (card.line is None, card.line or 0, card.file or "", card.task_id or "")


def _sidecars(folder: Path, sizes: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Video name -> its sidecar: `NAME.json` beside `NAME.EXT` naming it as `video_file`."""
    found: dict[str, dict[str, Any]] = {}
    for name in sizes:
        suffix = Path(name).suffix.lower()
        if suffix == ".json" or name == PAGE:
            continue
        sidecar = Path(name).with_suffix(".json").name
        if sizes.get(sidecar, SIDECAR_LIMIT) >= SIDECAR_LIMIT:
            continue
        document = _read_json(folder / sidecar)
        if isinstance(document, dict) and document.get("video_file") == name:
            found[name] = document
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None


def _tasks_by_file(
    folder: Path, entries: Iterable[JournalTask], sizes: Mapping[str, int]
) -> dict[str, JournalTask]:
    """File name -> the newest task (entries come newest first) that saved it in `folder`."""
    here = {os.path.abspath(folder), os.path.realpath(folder)}
    found: dict[str, JournalTask] = {}
    for entry in entries:
        for saved in entry.files:
            parent, name = os.path.split(os.path.abspath(saved))
            if name in sizes and name not in found and parent in here:
                found[name] = entry
    return found


def _from_sidecar(name: str, size: int, doc: Mapping[str, Any]) -> Card:
    params = _dict(doc.get("parameters"))
    return _card(
        params,
        file=name,
        size=size,
        line=_int(doc.get("line")),
        prompt=_text(doc.get("prompt")) or _text(params.get("prompt")),
        task_id=_text(doc.get("task_id")),
        status=_text(doc.get("status")) or "completed",  # a sidecar is written once it saved
        created_at=_time(doc.get("created_at")),
        completed_at=_time(doc.get("completed_at")),
        source="sidecar",
    )


def _from_journal(name: str, size: int, entry: JournalTask) -> Card:
    params = _dict(entry.params)
    task = _dict(entry.task)
    numbered = re.match(r"(\d+)-", name)  # batch's NNNN-TASKID.mp4
    line = int(numbered[1]) if numbered and entry.id in name else None
    return _card(
        params,
        file=name,
        size=size,
        line=line,
        prompt=_text(params.get("prompt")),
        task_id=entry.id,
        status=entry.status,
        error=entry.error,
        created_at=_time(task.get("created_at")) or entry.submitted_at,
        completed_at=_time(task.get("completed_at")),
        source="journal",
    )


def _from_record(doc: Mapping[str, Any]) -> Card:
    params = _dict(doc.get("parameters"))
    return _card(
        params,
        line=_int(doc.get("line")),
        prompt=_text(doc.get("prompt")) or _text(params.get("prompt")),
        task_id=_text(doc.get("task_id")),
        status=_text(doc.get("status")) or "error",
        error=_text(doc.get("error")) or "no video",
        created_at=_time(doc.get("created_at")),
        completed_at=_time(doc.get("completed_at")),
        source="record",
    )


def _card(params: Mapping[str, Any], **fields: Any) -> Card:
    """A card with the request's settings and references read from its body."""
    return Card(
        model=_text(params.get("model")),
        mode=_text(params.get("mode")),
        duration=_text(params.get("duration")),
        aspect_ratio=_text(params.get("aspect_ratio")),
        references=references(params),
        **fields,
    )


def references(body: Mapping[str, Any]) -> tuple[Reference, ...]:
    """The images, videos and elements a request body names, in the order of their lists
    (`<<<image_N>>>` is the N-th image): `image_urls` (-i), `metadata.image_list` (first
    frame, refs, end frame), `video_list`, `metadata.element_list`."""
    found: list[Reference] = []
    metadata = _dict(body.get("metadata"))
    images = body.get("image_urls")
    if isinstance(images, list):
        found += [Reference("image", url) for url in images if isinstance(url, str)]
    for item in _list(metadata.get("image_list")):
        kind = {"first_frame": "first frame", "end_frame": "end frame"}.get(
            str(item.get("type")), "image"
        )
        found.append(Reference(kind, _text(item.get("image_url"))))
    for item in _list(body.get("video_list")):
        found.append(Reference("video", _text(item.get("video_url"))))
    for item in _list(metadata.get("element_list")):
        url = _text(item.get("url"))
        element_id = _text(item.get("element_id"))
        found.append(Reference("element", url, None if url else element_id))
    return tuple(found)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """A value from a file or the service as text: strings and numbers; anything else is not
    something to show."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> float | str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return value if isinstance(value, str) and value else None
