"""What a generation request must be: both forms of API.md, each checked as the service
documents it (section 1c where it differs from 1b); a `Rejection` (400 naming the bad param)
otherwise.

The sandbox's own copy of the service's rules, kept apart from the client's checks on purpose:
a slip in those is caught here, not repeated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

JsonObj = dict[str, Any]

MODES = ("std", "pro")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
DEFAULT_ASPECT_RATIO = "16:9"

# Seconds, when the body names none (API.md 1c).
DEFAULT_DURATION = 5
# The seconds each model the service names takes (API.md 1c); a model not here: any whole
# number above 0 (the gateway serves other models on the same endpoint).
MODEL_DURATIONS: Mapping[str, range] = {
    "kling-v3-omni": range(3, 16),
    "kling-v3": range(3, 16),
    "kling-video-o1": range(3, 11),
    "kling-v2-6": range(5, 11, 5),  # 5 or 10
    "kling-3.0-turbo": range(3, 16),
}
# Kling's cap on a prompt, in characters.
MAX_PROMPT_CHARS = 2500

# The official Omni structures (API.md sections 1b and 1c).
IMAGE_TYPES = ("first_frame", "end_frame")
REFER_TYPES = ("base", "feature")
KEEP_ORIGINAL_SOUND = ("yes", "no")
ELEMENT_TYPES = ("image", "video")
ROLE_RE = re.compile(r"[A-Za-z0-9_-]+")
MAX_VIDEOS = 1
# Images and elements together (metadata.image_list + metadata.element_list), without and with
# a reference video.
MAX_REFERENCES = 7
MAX_REFERENCES_WITH_VIDEO = 4

# The caller's own id for a task (API.md 1c): top level, or inside metadata.
BUSINESS_ID = "client_business_id"
BUSINESS_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

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
    (`metadata.image_list`, `video_list`, `metadata.element_list`, `audio`), with the newest
    revision's fields (`client_business_id`, `metadata.watermark`) and limits.
    """
    if not isinstance(body, dict):
        return invalid("the request body must be a JSON object", None)
    for check in (
        _check_scalars,
        _check_business_id,
        _check_watermark,
        _check_image_urls,
        _check_image_list,
        _check_video_list,
        _check_element_list,
        _check_reference_count,
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
    if len(prompt) > MAX_PROMPT_CHARS:
        return invalid(
            f"prompt must be at most {MAX_PROMPT_CHARS} characters, not {len(prompt)}", "prompt"
        )
    if "mode" in body and body["mode"] not in MODES:
        return invalid("mode must be one of: std, pro", "mode")
    if "duration" in body:
        rejection = _check_duration(model, body["duration"])
        if rejection is not None:
            return rejection
    if "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
        return invalid("aspect_ratio must be one of: 16:9, 9:16, 1:1", "aspect_ratio")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        return invalid("metadata must be an object", "metadata")
    return None


def duration_range(model: str) -> str:
    """The seconds `model` takes, in words ("3 to 15", "5 or 10", "above 0")."""
    seconds = MODEL_DURATIONS.get(model)
    if seconds is None:
        return "above 0"
    if seconds.step != 1:
        return " or ".join(str(n) for n in seconds)
    return f"{seconds.start} to {seconds[-1]}"


def _check_duration(model: str, duration: object) -> Rejection | None:
    seconds = MODEL_DURATIONS.get(model)
    # `type(...) is int`: JSON true and 5.0 are not the integer 5 (bool is an int in Python).
    if type(duration) is int and (duration in seconds if seconds is not None else duration > 0):
        return None
    return invalid(
        f"duration must be an integer number of seconds, {duration_range(model)} for {model}",
        "duration",
    )


def business_id(body: JsonObj) -> str | None:
    """The caller's id for the task (validated): top level, else inside metadata; or None."""
    metadata = body.get("metadata") or {}
    value = body.get(BUSINESS_ID, metadata.get(BUSINESS_ID))
    return value if isinstance(value, str) else None


def _check_business_id(body: JsonObj) -> Rejection | None:
    metadata = body.get("metadata") or {}
    places = [(BUSINESS_ID, body), (f"metadata.{BUSINESS_ID}", metadata)]
    given = [(param, where[BUSINESS_ID]) for param, where in places if BUSINESS_ID in where]
    for param, value in given:
        if not (isinstance(value, str) and BUSINESS_ID_RE.fullmatch(value)):
            return invalid(
                f"{param} must be a string of 1 to 64 letters, digits, '.', '_', ':' or '-'",
                param,
            )
    if len(given) == 2 and given[0][1] != given[1][1]:
        return invalid(
            f"{BUSINESS_ID} and metadata.{BUSINESS_ID} differ; send one of them", BUSINESS_ID
        )
    return None


def _check_watermark(body: JsonObj) -> Rejection | None:
    metadata = body.get("metadata") or {}
    if "watermark" in metadata and not isinstance(metadata["watermark"], bool):
        return invalid("metadata.watermark must be true or false", "metadata.watermark")
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
    if len(items) > MAX_VIDEOS:
        return invalid(f"{param} holds at most {MAX_VIDEOS} video, not {len(items)}", param)
    for n, item in enumerate(items):
        if not (isinstance(item.get("video_url"), str) and _is_http_url(item["video_url"])):
            return invalid(f"{param}[{n}].video_url must be a public http(s) URL", param)
        if "refer_type" in item and item["refer_type"] not in REFER_TYPES:
            return invalid(f"{param}[{n}].refer_type must be base or feature", param)
        if "keep_original_sound" in item and item["keep_original_sound"] not in KEEP_ORIGINAL_SOUND:
            return invalid(f"{param}[{n}].keep_original_sound must be yes or no", param)
    return None


def _check_element_list(body: JsonObj) -> Rejection | None:
    """Each entry ToAPIs' form `{"url", "type"?, "role"?}` or Kling's `{"element_id"}`."""
    metadata = body.get("metadata") or {}
    if "element_list" not in metadata:
        return None
    param = "metadata.element_list"
    items = _objects(metadata["element_list"], param, "a url or an integer element_id")
    if isinstance(items, Rejection):
        return items
    for n, item in enumerate(items):
        problem = _element_problem(item)
        if problem is not None:
            return invalid(f"{param}[{n}]: {problem}", param)
    return None


def _element_problem(item: JsonObj) -> str | None:
    """What is wrong with one element_list entry, or None."""
    if "url" in item and "element_id" in item:
        return "an element is either a url or an element_id, not both"
    if "element_id" in item:
        element_id = item["element_id"]
        if type(element_id) is not int or element_id < 1:  # JSON true is not an id
            return "element_id must be a positive integer"
        return None
    if "url" not in item:
        return "needs a url (or an integer element_id)"
    url = item["url"]
    if _is_data_url(url):
        return f"url: {NO_DATA_URLS}"
    if not (isinstance(url, str) and _is_http_url(url)):
        return "url must be an http(s) URL"
    if "type" in item and item["type"] not in ELEMENT_TYPES:
        return "type must be image or video"
    if "role" in item and not (isinstance(item["role"], str) and ROLE_RE.fullmatch(item["role"])):
        return "role must be a word of letters, digits, '_' or '-'"
    return None


def _check_reference_count(body: JsonObj) -> Rejection | None:
    """At most MAX_REFERENCES images and elements together, fewer with a reference video. The
    param names the list the count passes the limit in (images count first)."""
    metadata = body.get("metadata") or {}
    images = len(metadata.get("image_list", []))
    elements = len(metadata.get("element_list", []))
    with_video = bool(body.get("video_list"))
    limit = MAX_REFERENCES_WITH_VIDEO if with_video else MAX_REFERENCES
    if images + elements <= limit:
        return None
    param = "metadata.image_list" if images > limit else "metadata.element_list"
    reason = " with a reference video in video_list" if with_video else ""
    return invalid(
        f"metadata.image_list and metadata.element_list hold at most {limit} images and "
        f"elements together{reason}, not {images + elements}",
        param,
    )


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
