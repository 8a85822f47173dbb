"""What a gallery page shows, as plain data: a card a video (or a batch line that made none),
and the page's few facts. Built by `gather`, drawn by `render`; nothing here reads a file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """An image, video or element the request named. `url` is None for what has no address
    (a Kling element id): shown as text, never loaded."""

    kind: str  # "image", "first frame", "end frame", "video", "element"
    url: str | None = None
    label: str | None = None  # text for a reference without a URL (`element 42`)


@dataclass(frozen=True)
class Card:
    """One video, or one batch line that did not make one.

    `file`: the video's name inside the gallery's folder, linked relatively so the folder can
    move; None for a line that made no video (`error` says why). Every other field is None
    where nothing knew it."""

    file: str | None = None
    size: int | None = None  # bytes
    line: int | None = None  # the batch line that made it
    prompt: str | None = None
    model: str | None = None
    mode: str | None = None
    duration: str | None = None  # seconds, as sent
    aspect_ratio: str | None = None
    references: tuple[Reference, ...] = ()
    task_id: str | None = None
    status: str | None = None  # as the service spelled it
    error: str | None = None  # why a line made no video
    created_at: float | str | None = None  # Unix seconds, or the service's text as it came
    completed_at: float | str | None = None
    source: str = "file"  # where the facts came from: sidecar, journal, record or file


@dataclass(frozen=True)
class Gallery:
    title: str  # the folder's name
    cards: tuple[Card, ...] = ()
    generated_at: float = 0.0  # Unix seconds

    @property
    def videos(self) -> int:
        return sum(1 for card in self.cards if card.file is not None)

    @property
    def without_video(self) -> int:
        return sum(1 for card in self.cards if card.file is None)
