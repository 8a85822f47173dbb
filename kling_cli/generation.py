"""The body of a generation request (API.md section 1), checked before anything is sent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import ASPECT_RATIOS, DURATIONS, MODES
from .errors import UsageError

IMAGE_REF = re.compile(r"<<<image_(\d+)>>>")
MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def image_refs(prompt: str) -> set[int]:
    """The N of every `<<<image_N>>>` in the prompt."""
    return {int(n) for n in IMAGE_REF.findall(prompt)}


def check_image_refs(prompt: str, image_count: int) -> None:
    missing = sorted(n for n in image_refs(prompt) if n < 1 or n > image_count)
    if missing:
        refs = ", ".join(f"<<<image_{n}>>>" for n in missing)
        have = (
            f"only {image_count} image{'s' if image_count != 1 else ''}"
            if image_count
            else "no images"
        )
        raise UsageError(
            f"the prompt refers to {refs}, but there {'is' if image_count == 1 else 'are'} {have}",
            hint="add images with -i/--image, in the order the prompt numbers them",
        )


def parse_assignment(text: str, option: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE read as JSON where it parses, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"{option} expects KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except (ValueError, RecursionError):
        value = raw
    return key, value


def parse_assignments(items: Iterable[str], option: str) -> dict[str, Any]:
    return dict(parse_assignment(item, option) for item in items)


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


def build_body(
    *,
    model: str,
    prompt: str,
    mode: str,
    duration: int,
    aspect_ratio: str,
    image_urls: Sequence[str],
    metadata: Mapping[str, Any],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON body, validated. `extra` (from --set) may add or override any top-level field."""
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if duration not in DURATIONS:
        raise UsageError(f"--duration must be 5 or 10 (seconds), got {duration!r}")
    if aspect_ratio not in ASPECT_RATIOS:
        raise UsageError(
            f"--aspect-ratio must be one of {', '.join(ASPECT_RATIOS)}, got {aspect_ratio!r}"
        )
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "mode": mode,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
    }
    if image_urls:
        body["image_urls"] = list(image_urls)
    if metadata:
        body["metadata"] = dict(metadata)
    body.update(extra)
    _check_final_body(body)
    return body


def _check_final_body(body: Mapping[str, Any]) -> None:
    """Rules that still hold after --set may have replaced fields."""
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise UsageError("the prompt must be a non-empty string")
    if isinstance(body.get("duration"), str):
        raise UsageError("duration must be a number, not a string")
    urls = body.get("image_urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise UsageError("image_urls must be a list of URLs")
    for url in urls:
        if url.strip().lower().startswith("data:"):
            raise UsageError("data: URLs are not accepted by the service; pass a file path instead")
    check_image_refs(body["prompt"], len(urls))
    if "audio" in body and "video_list" in body:
        raise UsageError("audio and video_list cannot be used together (API.md)")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        raise UsageError("metadata must be an object")
