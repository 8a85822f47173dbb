"""What a generation request must be: both forms of API.md, each checked as the service
documents it; a `Rejection` (400 naming the bad param) otherwise."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

JsonObj = dict[str, Any]

MODES = ("std", "pro")
DURATIONS = (5, 10)
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
DEFAULT_ASPECT_RATIO = "16:9"

# The official Omni structures (API.md section 1b).
IMAGE_TYPES = ("first_frame", "end_frame")
REFER_TYPES = ("base", "feature")
KEEP_ORIGINAL_SOUND = ("yes", "no")

# `<<<image_N>>>`, `<<<video_N>>>`, `<<<element_N>>>`: each numbered in its own list, from 1.
PLACEHOLDER_RE = re.compile(r"<<<(image|video|element)_(-?\d+)>>>")


@dataclass(frozen=True)
class Rejection:
    """An error answer: HTTP status, JSON body and extra headers."""

    status: int
    body: JsonObj
    headers: Mapping[str, str] = field(default_factory=dict)


def invalid(message: str, param: str | None) -> Rejection:
    return Rejection(
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": "invalid_parameter",
            }
        },
    )


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def validate_generation(body: object) -> Rejection | None:
    """None when the body is acceptable, else the 400 answer naming the first bad field.

    Both request forms: the seed's `image_urls`, and the official Omni structures
    (`metadata.image_list`, `video_list`, `metadata.element_list`, `audio`).
    """
    if not isinstance(body, dict):
        return invalid("the request body must be a JSON object", None)
    for check in (
        _check_scalars,
        _check_image_urls,
        _check_image_list,
        _check_video_list,
        _check_element_list,
        _check_audio,
        _check_placeholders,
    ):
        rejection = check(body)
        if rejection is not None:
            return rejection
    return None


def is_omni_form(body: JsonObj) -> bool:
    """The official Omni form: the service then adds nothing to the prompt."""
    metadata = body.get("metadata") or {}
    return "image_list" in metadata or "element_list" in metadata or "video_list" in body


def reference_lists(body: JsonObj) -> dict[str, tuple[str, list[Any]]]:
    """For each placeholder kind: (the list's name, the list) that `<<<kind_N>>>` counts in."""
    metadata = body.get("metadata") or {}
    images = (
        ("metadata.image_list", metadata["image_list"])
        if "image_list" in metadata
        else ("image_urls", body.get("image_urls", []))
    )
    return {
        "image": images,
        "video": ("video_list", body.get("video_list", [])),
        "element": ("metadata.element_list", metadata.get("element_list", [])),
    }


def _check_scalars(body: JsonObj) -> Rejection | None:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return invalid("model is required and must be a string", "model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return invalid("prompt is required and must be a non-empty string", "prompt")
    if "mode" in body and body["mode"] not in MODES:
        return invalid("mode must be one of: std, pro", "mode")
    # `type(...) is int`: JSON true and 5.0 are not the integer 5 (bool is an int in Python).
    if "duration" in body and not (type(body["duration"]) is int and body["duration"] in DURATIONS):
        return invalid("duration must be the integer 5 or 10", "duration")
    if "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
        return invalid("aspect_ratio must be one of: 16:9, 9:16, 1:1", "aspect_ratio")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        return invalid("metadata must be an object", "metadata")
    return None


NO_DATA_URLS = "base64/data URLs are not supported; upload the image first"


def _is_data_url(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith("data:")


def _check_image_urls(body: JsonObj) -> Rejection | None:
    if "image_urls" not in body:
        return None
    images = body["image_urls"]
    if not isinstance(images, list):
        return invalid("image_urls must be a list of http(s) URLs", "image_urls")
    for url in images:
        if _is_data_url(url):
            return invalid(NO_DATA_URLS, "image_urls")
        if not (isinstance(url, str) and _is_http_url(url)):
            return invalid("image_urls must be a list of http(s) URLs", "image_urls")
    if images and "image_list" in (body.get("metadata") or {}):
        # Two lists would give `<<<image_N>>>` two numberings.
        return invalid(
            "image_urls and metadata.image_list cannot be used together; use one of them",
            "image_urls",
        )
    return None


def _objects(value: object, param: str, what: str) -> list[JsonObj] | Rejection:
    """`value` as a list of objects, or the 400 saying it is not one."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return invalid(f"{param} must be a list of objects, each with {what}", param)
    return value


def _check_image_list(body: JsonObj) -> Rejection | None:
    metadata = body.get("metadata") or {}
    if "image_list" not in metadata:
        return None
    param = "metadata.image_list"
    items = _objects(metadata["image_list"], param, "an image_url")
    if isinstance(items, Rejection):
        return items
    types: list[str] = []
    for n, item in enumerate(items):
        url = item.get("image_url")
        if _is_data_url(url):
            return invalid(f"{param}[{n}].image_url: {NO_DATA_URLS}", param)
        if not (isinstance(url, str) and _is_http_url(url)):
            return invalid(f"{param}[{n}].image_url must be an http(s) URL", param)
        if "type" in item:
            if item["type"] not in IMAGE_TYPES:
                return invalid(f"{param}[{n}].type must be first_frame or end_frame", param)
            if item["type"] in types:
                return invalid(f"{param} may hold only one {item['type']}", param)
            types.append(item["type"])
    if "end_frame" in types and "first_frame" not in types:
        return invalid(f"{param}: an end_frame needs a first_frame (end frame alone)", param)
    return None


def _check_video_list(body: JsonObj) -> Rejection | None:
    if "video_list" not in body:
        return None
    param = "video_list"
    items = _objects(body["video_list"], param, "a video_url")
    if isinstance(items, Rejection):
        return items
    for n, item in enumerate(items):
        if not (isinstance(item.get("video_url"), str) and _is_http_url(item["video_url"])):
            return invalid(f"{param}[{n}].video_url must be a public http(s) URL", param)
        if "refer_type" in item and item["refer_type"] not in REFER_TYPES:
            return invalid(f"{param}[{n}].refer_type must be base or feature", param)
        if "keep_original_sound" in item and item["keep_original_sound"] not in KEEP_ORIGINAL_SOUND:
            return invalid(f"{param}[{n}].keep_original_sound must be yes or no", param)
    return None


def _check_element_list(body: JsonObj) -> Rejection | None:
    metadata = body.get("metadata") or {}
    if "element_list" not in metadata:
        return None
    param = "metadata.element_list"
    items = _objects(metadata["element_list"], param, "an integer element_id")
    if isinstance(items, Rejection):
        return items
    for n, item in enumerate(items):
        if type(item.get("element_id")) is not int:  # JSON true is not an id
            return invalid(f"{param}[{n}].element_id must be an integer", param)
    return None


def _check_audio(body: JsonObj) -> Rejection | None:
    if "audio" not in body:
        return None
    if not isinstance(body["audio"], bool):
        return invalid("audio must be true or false", "audio")
    if body["audio"] and body.get("video_list"):
        return invalid("audio and video_list cannot be used together", "video_list")
    return None


def _check_placeholders(body: JsonObj) -> Rejection | None:
    lists = reference_lists(body)
    for kind, ref in PLACEHOLDER_RE.findall(body["prompt"]):
        n = int(ref)
        name, items = lists[kind]
        if n < 1 or n > len(items):
            return invalid(
                f"<<<{kind}_{n}>>> refers to a missing {kind}: {len(items)} in {name}", "prompt"
            )
    return None
