"""Local images to URLs: uploaded once, then reused from the journal's cache while fresh."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import Executor
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import interrupts, progress
from .errors import Interrupted, LocalFileError

if TYPE_CHECKING:
    from .api.client import Client
    from .context import Ui
    from .store.records import Records


def upload(client: Client, ui: Ui, path: Path, quiet: bool = False) -> dict[str, Any]:
    """One upload with a byte bar: the service's `data` object."""
    size = path.stat().st_size
    display = progress.transfer_display(ui, f"uploading {path.name}", quiet, str(path), size)
    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        display.advance(min(sent, size), size)

    try:
        with closing(display):
            data = client.upload_image(path, on_bytes=on_bytes)
            display.finish()
            return data
    except KeyboardInterrupt as stop:
        raise Interrupted(
            f"interrupted while uploading {path}; nothing was submitted",
            signum=interrupts.signal_of(stop),
        ) from None


def urls_for(
    client: Client,
    records: Records,
    ui: Ui,
    paths: Iterable[Path],
    *,
    quiet: bool = False,
    pool: Executor | None = None,
) -> dict[Path, str]:
    """The URL of each distinct local image. Uploads run one by one with a byte bar, or
    side by side on `pool` (batch)."""
    urls: dict[Path, str] = {}
    todo: list[tuple[Path, str]] = []
    for path in sorted(set(paths)):
        digest = file_sha256(path)
        cached = records.attempt(lambda j, d=digest: j.cached_upload(d))  # type: ignore[misc]
        if cached:
            urls[path] = cached
        else:
            todo.append((path, digest))
    if pool is None:
        answers = ((path, digest, upload(client, ui, path, quiet)) for path, digest in todo)
    else:
        futures = [(path, d, pool.submit(client.upload_image, path)) for path, d in todo]
        answers = ((path, digest, future.result()) for path, digest, future in futures)
    for path, digest, data in answers:
        url = str(data["url"])
        records.attempt(lambda j, d=digest, u=url: j.remember_upload(d, u))  # type: ignore[misc]
        urls[path] = url
    return urls


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()  # images are at most 10 MB
    except OSError as exc:  # exit 8, as `kling upload` says of a file it cannot read
        raise LocalFileError(f"cannot read {path}: {exc.strerror or exc}") from None
