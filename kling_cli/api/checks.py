"""The service's rules on a generation body, whatever built it (options, a batch line,
--metadata or --set), checked before anything is sent (API.md 1, 1b and 1c): the lists and the
placeholders that count in them, the limits of Kling's Omni requests, the business id, and that
it is JSON at all."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..text import check_utf8

PLACEHOLDER = re.compile(r"<<<(image|video|element)_(-?\d+)>>>")
FIRST_FRAME, END_FRAME = "first_frame", "end_frame"
MAX_PROMPT = 2500  # characters: Kling's own cap
MAX_VIDEOS = 1  # reference videos (API.md 1c)
MAX_REFERENCES, MAX_REFERENCES_WITH_VIDEO = 7, 4  # images and elements together
BUSINESS_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
ADD_WITH = {
    "image": "add images with --ref/--first-frame (or -i), in the order the prompt numbers them",
    "video": "add a reference video with --video",
    "element": "add elements with --element, in the order the prompt numbers them",
}


def new_business_id() -> str:
    """One for a send that was given none: the time it was made and 48 random bits, so that
    it names that send alone (`kling-20261204T101530-9f3a2b1c7d4e`)."""
    return f"kling-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.urandom(6).hex()}"


def has_business_id(body: Mapping[str, Any]) -> bool:
    """Whether the body carries a client_business_id (at the top, or in its metadata)."""
    metadata = body.get("metadata")
    return "client_business_id" in body or (
        isinstance(metadata, dict) and "client_business_id" in metadata
    )


def check_business_id(value: object, where: str = "--business-id") -> str:
    """A client_business_id (API.md 1c): 1 to 64 letters, digits, `.`, `_`, `:` or `-`; not
    only dots, which a URL path would read as `.` or `..`."""
    if not isinstance(value, str) or not BUSINESS_ID.fullmatch(value) or not value.strip("."):
        raise UsageError(
            f"{where} must be 1 to 64 letters, digits, '.', '_', ':' or '-' (not only dots), "
            f"not {value!r}"
        )
    return value


def check_body(body: Mapping[str, Any]) -> None:
    """Rules that hold whatever built the body: options, --metadata or --set."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError("the prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT:
        raise UsageError(
            f"the prompt is {len(prompt):,} characters; Kling takes at most {MAX_PROMPT:,}"
        )
    duration = body.get("duration")
    if "duration" in body and (not isinstance(duration, int) or isinstance(duration, bool)):
        raise UsageError(f"duration must be a whole number of seconds, not {duration!r}")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise UsageError("metadata must be an object")
    for where, place in (("", body), ("metadata.", metadata)):
        if "client_business_id" in place:
            check_business_id(place["client_business_id"], f"{where}client_business_id")
    image_urls = _list_of(body, "image_urls", None)
    if not all(isinstance(u, str) for u in image_urls):
        raise UsageError("image_urls must be a list of URLs")
    image_list = _list_of(metadata, "image_list", "image_url", "metadata.")
    videos = _list_of(body, "video_list", "video_url")
    elements = _list_of(metadata, "element_list", None, "metadata.")
    if not all(isinstance(e, dict) and ("url" in e or "element_id" in e) for e in elements):
        raise UsageError(
            'metadata.element_list must be a list of objects with "url" or "element_id"'
        )
    if "image_urls" in body and "image_list" in metadata:
        raise UsageError(
            "image_urls and metadata.image_list cannot be used together: "
            "they would number <<<image_N>>> twice"
        )
    for url in [*image_urls, *(entry["image_url"] for entry in image_list)]:
        if isinstance(url, str) and url.strip().lower().startswith("data:"):
            raise UsageError("data: URLs are not accepted by the service; pass a file path instead")
    types = [entry.get("type") for entry in image_list]
    if END_FRAME in types and FIRST_FRAME not in types:
        raise UsageError("an end frame needs a first frame: an end frame alone is not supported")
    if "watermark" in metadata and not isinstance(metadata["watermark"], bool):
        raise UsageError(f"watermark must be true or false, not {metadata['watermark']!r}")
    audio = body.get("audio")
    if "audio" in body and not isinstance(audio, bool):
        raise UsageError(f"audio must be true or false, not {audio!r}")
    if audio and "video_list" in body:
        raise UsageError("audio and video_list cannot be used together: no sound with a video")
    _check_limits(len(image_list) + len(elements), len(videos))
    images = image_list if "image_list" in metadata else image_urls
    _check_placeholders(
        prompt, {"image": len(images), "video": len(videos), "element": len(elements)}
    )
    _check_json(body)


def _check_limits(references: int, videos: int) -> None:
    """Kling's limits (API.md 1c): one reference video; 7 images and elements together, 4
    beside a video."""
    if videos > MAX_VIDEOS:
        raise UsageError(f"{videos} reference videos: the service takes at most {MAX_VIDEOS}")
    most = MAX_REFERENCES_WITH_VIDEO if videos else MAX_REFERENCES
    if references > most:
        beside = " beside a reference video" if videos else ""
        raise UsageError(
            f"{references} images and elements: the service takes at most {most}{beside}"
        )


def _list_of(where: Mapping[str, Any], name: str, key: str | None, prefix: str = "") -> list[Any]:
    """`where[name]` as a list (empty when absent); each entry an object with `key`."""
    value = where.get(name, [])
    if not isinstance(value, list) or (
        key is not None and not all(isinstance(e, dict) and key in e for e in value)
    ):
        shape = f'objects with "{key}"' if key else "values"
        raise UsageError(f"{prefix}{name} must be a list of {shape}")
    return value


def _check_placeholders(prompt: str, counts: Mapping[str, int]) -> None:
    """Each `<<<KIND_N>>>` names the N-th entry (from 1) of its own list."""
    for kind, count in counts.items():
        numbers = sorted({int(n) for k, n in PLACEHOLDER.findall(prompt) if k == kind})
        if numbers and numbers[0] < 1:
            raise UsageError(f"<<<{kind}_{numbers[0]}>>>: placeholders are numbered from 1")
        missing = [n for n in numbers if n > count]
        if missing:
            refs = ", ".join(f"<<<{kind}_{n}>>>" for n in missing)
            noun = f"{kind}{'s' if count != 1 else ''}"
            have = f"only {count} {noun}" if count else f"no {kind}s"
            raise UsageError(
                f"the prompt refers to {refs}, but there {'is' if count == 1 else 'are'} {have}",
                hint=ADD_WITH[kind],
            )


def _check_json(body: Mapping[str, Any]) -> None:
    """The body must be JSON in UTF-8: no NaN or infinity, no text that is not Unicode (a
    prompt in another encoding reaches Python as surrogates). Caught here, nothing was sent."""
    for key, value in body.items():
        try:
            text = json.dumps({key: value}, allow_nan=False, ensure_ascii=False)
        except ValueError:
            raise UsageError(f"{key}: NaN and infinity are not JSON numbers") from None
        check_utf8(text, key)  # the key too: a --set name
