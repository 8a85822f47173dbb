"""Local images and image URLs as the user gives them: checked before anything is sent."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UsageError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def classify_image(ref: str) -> tuple[str, str | Path]:
    """("url", URL) for a public URL, ("file", Path) for a local file to upload first."""
    lowered = ref.strip().lower()
    if lowered.startswith("data:"):
        raise UsageError(
            "data: URLs are not accepted by the service",
            hint="pass the image's file path instead (kling uploads it first)",
        )
    if lowered.startswith(("http://", "https://")):
        return "url", ref.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", lowered):
        raise UsageError(f"image {ref!r}: only http(s) URLs or local file paths are accepted")
    return "file", check_image_file(Path(ref).expanduser())


def check_image_file(path: Path) -> Path:
    """A local image the upload endpoint will take: exists, JPEG/PNG/WebP/GIF, at most 10 MB."""
    if not path.exists():
        raise UsageError(f"image file {path} does not exist")
    if not path.is_file():
        raise UsageError(f"image {path} is not a file")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"image {path}: the service takes JPEG, PNG, WebP or GIF files")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise UsageError(f"image {path} is {size / 1e6:.1f} MB; the service takes at most 10 MB")
    from .images import first_bytes, is_image, looks_like

    head = first_bytes(path)
    if head is not None and not is_image(head):  # unreadable: the upload says so, as before
        # The service would refuse it after the upload (exit 4): say so before sending it.
        raise UsageError(f"image {path} is not a JPEG, PNG, WebP or GIF image: {looks_like(head)}")
    return path
