"""What a local file is, by its first bytes: the image kinds the service takes, and the files
people mistake for images (named in the error, so the user knows what to convert)."""

from __future__ import annotations

from pathlib import Path

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
