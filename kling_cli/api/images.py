"""Images and elements as the user gives them (a public URL or a local file), checked before
anything is sent: a local file by its size and first bytes, the image kinds the service takes,
and the files people mistake for images (named in the error, so the user knows what to
convert)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError

HEAD = 64  # bytes: enough for every signature below


def first_bytes(path: Path) -> bytes | None:
    """The file's first bytes, or None when it cannot be read."""
    try:
        with path.open("rb") as fh:
            return fh.read(HEAD)
    except OSError:
        return None


def is_image(head: bytes) -> bool:
    """JPEG, PNG, WebP or GIF by their magic bytes (the service's own check)."""
    return head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    )


# Files people mistake for images, by their first bytes: named in the error.
_OTHER_KINDS = (
    (b"%PDF", "a PDF document"),
    (b"BM", "a BMP image"),
    (b"II*\0", "a TIFF image"),
    (b"MM\0*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive"),
)


def looks_like(head: bytes) -> str:
    if not head:
        return "it is empty"
    kind = _kind(head)
    return f"it looks like {kind}" if kind else f"its first bytes are {head[:8].hex(' ')}"


def _kind(head: bytes) -> str | None:
    for magic, kind in _OTHER_KINDS:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":  # ISO media: HEIC/AVIF photos from phones, or a video
        brand = head[8:12].decode("ascii", "replace").strip()
        if brand in {"heic", "heix", "mif1", "msf1", "hevc"}:
            return "a HEIC image (convert it to JPEG first)"
        if brand in {"avif", "avis"}:
            return "an AVIF image"
        return "a video or other ISO media file"
    text = _utf8(head)
    if text is None or any(c < " " and c not in "\t\n\r\f" for c in text):
        return None
    lowered = text.lstrip().lower()
    if lowered.startswith(("<svg", "<?xml")):
        return "SVG or XML text"
    if lowered.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    return "a text file"


def _utf8(head: bytes) -> str | None:
    """The bytes as UTF-8 text, allowing a character cut in two at the end of the sample."""
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def classify_image(ref: str) -> tuple[str, str | Path]:
    """("url", URL) for a public URL, ("file", Path) for a local file to upload first."""
    lowered = ref.strip().lower()
    if not lowered:  # Path("") is the current folder: "image . is not a file" said nothing
        raise UsageError("an image is an empty string: give a URL or a file path")
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
    named_so = path.suffix.lower() in IMAGE_SUFFIXES
    size = path.stat().st_size
    if named_so and size > MAX_IMAGE_BYTES:
        raise UsageError(f"image {path} is {size / 1e6:.1f} MB; the service takes at most 10 MB")
    head = first_bytes(path)
    if head is not None and not is_image(head):  # unreadable: the upload says so, as before
        # The service would refuse it after the upload (exit 4): say so before sending it, and
        # with a wrong name, say what it is, not only what it is not.
        raise UsageError(f"image {path} is not a JPEG, PNG, WebP or GIF image: {looks_like(head)}")
    if not named_so:
        raise UsageError(
            f"image {path}: the service takes JPEG, PNG, WebP or GIF files, named so "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return path


# --- elements (CLI.md "The newest revision of the service") -----------------------------------

# ("id", N): Kling's element library; ("url", URL, TYPE, ROLE); ("file", PATH, "image", ROLE),
# uploaded first; ("object", {...}): an entry of a batch line sent as it is.
Element = tuple[Any, ...]
_ROLE = re.compile(r"([A-Za-z0-9_-]+)=(.+)", re.DOTALL)
_VIDEO_SUFFIXES = (".mp4", ".mov")
MAX_ELEMENT_ID = 2**63 - 1


def classify_element(given: object, where: str = "--element") -> Element:
    """`[ROLE=]URL|PATH|ID` (or, from a batch line, a number or an object)."""
    if isinstance(given, dict):
        return ("object", given)
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if not isinstance(given, str) or not given.strip():
        raise UsageError(f"{where}: an element is [ROLE=]URL, a local image or an element id")
    text = given.strip()
    if text.isdigit():
        if not 1 <= int(text) <= MAX_ELEMENT_ID:
            raise UsageError(f"{where}: element id {text} is out of range")
        return ("id", int(text))
    match = _ROLE.fullmatch(text)
    role, ref = (match[1], match[2]) if match else (None, text)  # a URL's own `=` is no role
    kind, value = classify_image(ref)
    if kind == "url":
        path = urlsplit(str(value)).path.lower()
        return ("url", value, "video" if path.endswith(_VIDEO_SUFFIXES) else "image", role)
    return ("file", value, "image", role)


def element_entry(element: Element, url: str | None = None) -> dict[str, Any]:
    """The `metadata.element_list` entry; `url`: a local image's, once uploaded."""
    kind = element[0]
    if kind == "object":
        return dict(element[1])
    if kind == "id":
        return {"element_id": element[1]}
    entry = {"url": url or str(element[1]), "type": element[2]}
    return entry if element[3] is None else {**entry, "role": element[3]}
