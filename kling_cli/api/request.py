"""The request model: options (from `generate` flags or a batch line) -> the generation body,
checked before anything is sent (API.md sections 1, 1b and 1c; CLI.md "The official Omni
references" and "The newest revision of the service").

Both forms of the service live here: the seed's `image_urls` (`-i`), and Kling's official Omni
structures (`metadata.image_list` with first and end frames, `video_list`,
`metadata.element_list`, `metadata.watermark`, `audio`), and the send's `client_business_id`.
The rules of the final body are checks.py's, so a list counts wherever it came from: an option,
`--metadata` or `--set`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ASPECT_RATIOS, MODEL_DURATIONS, MODES, VIDEO_REFERS
from ..errors import UsageError
from .checks import END_FRAME, FIRST_FRAME, PLACEHOLDER, check_body, check_business_id
from .images import Element, classify_element, classify_image, element_entry

DEFAULT_VIDEO_REFER = "base"  # the service's own (API.md 1c)

# An image as the user gave it: ("url", URL) or ("file", Path), to be uploaded first.
Image = tuple[str, str | Path]
Setting = Callable[[str], Any]  # a config key's value (flag > environment > file > default)


def durations_text(durations: tuple[int, ...]) -> str:
    """`3 to 15`, `5 or 10`."""
    if len(durations) > 2 and durations == tuple(range(durations[0], durations[-1] + 1)):
        return f"{durations[0]} to {durations[-1]}"
    return " or ".join(map(str, durations))


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


def classify_video(ref: str) -> str:
    """A reference video must already be at a public URL: the service uploads images only."""
    value = ref.strip()
    if value.lower().startswith(("http://", "https://")):
        return value
    raise UsageError(
        f"video {ref!r}: a reference video must be a public http(s) URL",
        hint="the service's upload takes images only: put the video where the service can "
        "fetch it (MP4/MOV, 3-10 s, at most 200 MB) and pass its URL",
    )


@dataclass
class Request:
    """What the user asked for, before local images are uploaded."""

    prompt: str
    model: str
    mode: str
    duration: int
    aspect_ratio: str
    images: list[Image] = field(default_factory=list)  # -i: the seed's image_urls
    refs: list[Image] = field(default_factory=list)
    first_frame: Image | None = None
    end_frame: Image | None = None
    videos: list[str] = field(default_factory=list)
    video_refer: str | None = None
    keep_sound: bool = False
    elements: list[Element] = field(default_factory=list)
    audio: bool | None = None
    watermark: bool | None = None
    business_id: str | None = None  # client_business_id: made by kling when not given
    metadata: dict[str, Any] = field(default_factory=dict)  # --metadata
    extra: dict[str, Any] = field(default_factory=dict)  # --set: any top-level field
    from_line: bool = False  # a batch line: messages name its keys, not the options
    duration_from: str | None = None  # not given: the setting it came from (KLING_DURATION)

    def __post_init__(self) -> None:
        # Choices ignore case (`--mode PRO`); the service is sent them as it spells them.
        if isinstance(self.mode, str):
            self.mode = self.mode.strip().lower()
        if isinstance(self.video_refer, str):
            self.video_refer = self.video_refer.strip().lower()
        self._check_options()

    def _name(self, option: str) -> str:
        """How the user spelled it: `--end-frame` on the command line, `end_frame` in a line."""
        return f"`{LINE_KEY_OF[option]}`" if self.from_line else option

    # --- what to upload first ------------------------------------------------------------------

    def local_files(self) -> list[Path]:
        """Local images, each once, in the order given: they are uploaded before sending."""
        everything = [*self.images, self.first_frame, *self.refs, self.end_frame, *self.elements]
        files = [Path(item[1]) for item in everything if item is not None and item[0] == "file"]
        return list(dict.fromkeys(files))

    # --- the body ------------------------------------------------------------------------------

    def body(self, urls: Mapping[Path, str] | None = None) -> dict[str, Any]:
        """The JSON body, checked. Local images take their uploaded URL from `urls`; without
        it (a dry run, or checking before uploading) their paths stand in for the URLs."""

        def url(image: Image) -> str:
            kind, ref = image
            if kind == "file" and urls is not None and Path(ref) in urls:
                return urls[Path(ref)]
            return str(ref)

        body: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "mode": self.mode,
            "duration": self.duration,
            "aspect_ratio": self.aspect_ratio,
        }
        if self.images:
            body["image_urls"] = [url(i) for i in self.images]
        metadata = dict(self.metadata)
        image_list = [
            {"image_url": url(self.first_frame), "type": FIRST_FRAME} if self.first_frame else None,
            *({"image_url": url(ref)} for ref in self.refs),
            {"image_url": url(self.end_frame), "type": END_FRAME} if self.end_frame else None,
        ]
        if any(image_list):
            metadata["image_list"] = [entry for entry in image_list if entry]
        if self.elements:
            metadata["element_list"] = [
                element_entry(e, url(("file", e[1])) if e[0] == "file" else None)
                for e in self.elements
            ]
        if self.watermark is not None:
            metadata["watermark"] = self.watermark
        if metadata:
            body["metadata"] = metadata
        if self.videos:
            refer = self.video_refer or DEFAULT_VIDEO_REFER
            sound = "yes" if self.keep_sound else "no"
            body["video_list"] = [
                {"video_url": v, "refer_type": refer, "keep_original_sound": sound}
                for v in self.videos
            ]
        if self.audio is not None:
            body["audio"] = self.audio
        if self.business_id is not None:
            body["client_business_id"] = self.business_id
        body.update(self.extra)
        check_body(body)
        return body

    # --- checks on the options themselves ------------------------------------------------------

    def _check_options(self) -> None:
        n = self._name
        if not self.prompt.strip():
            raise UsageError("the prompt is empty")
        for option, value, choices in (
            ("--mode", self.mode, MODES),
            ("--aspect-ratio", self.aspect_ratio, ASPECT_RATIOS),
            ("--video-refer", self.video_refer, (None, *VIDEO_REFERS)),
        ):
            if value not in choices:
                shown = ", ".join(str(c) for c in choices if c is not None)
                raise UsageError(f"{n(option)} must be one of {shown}, got {value!r}")
        durations = MODEL_DURATIONS.get(self.model)
        if self.duration < 1 or (durations is not None and self.duration not in durations):
            seconds = durations_text(durations) if durations else "a whole number above 0"
            asked = f"{n('--duration')} {self.duration}"
            if self.duration_from is not None:  # not the user's option: the setting's
                asked = f"duration {self.duration} (from {self.duration_from})"
            raise UsageError(f"{asked}: {self.model} takes {seconds} seconds")
        if self.business_id is not None:
            check_business_id(self.business_id, n("--business-id"))
        omni_images = bool(self.refs or self.first_frame or self.end_frame)
        if self.images and omni_images:
            raise UsageError(
                f"{n('-i/--image')} cannot be used with {n('--ref')}, {n('--first-frame')} or "
                f"{n('--end-frame')}: they would number <<<image_N>>> twice",
                hint=f"use {n('--ref')} for reference images in the Omni form, "
                f"or {n('-i/--image')} alone",
            )
        if self.end_frame and not self.first_frame:
            raise UsageError(
                f"{n('--end-frame')} needs {n('--first-frame')}: "
                "an end frame alone is not supported"
            )
        if self.audio and self.videos:
            raise UsageError(f"{n('--audio')} cannot be used with a reference video")
        if len(self.videos) > 1:
            raise UsageError(
                f"{n('--video')} given {len(self.videos)} times: the service takes one "
                "reference video"
            )
        if not self.videos and (self.video_refer is not None or self.keep_sound):
            raise UsageError(
                f"{n('--video-refer')} and {n('--keep-sound')} apply to reference videos "
                f"({n('--video')}): none was given"
            )
        # The same field two ways: one would silently replace the other.
        images_etc = bool(
            self.metadata or omni_images or self.elements or self.watermark is not None
        )
        for name, option, given in (
            ("prompt", "the prompt", True),
            ("image_urls", n("-i/--image"), bool(self.images)),
            ("video_list", n("--video"), bool(self.videos)),
            ("audio", n("--audio"), self.audio is not None),
            ("client_business_id", n("--business-id"), self.business_id is not None),
            ("metadata", f"{n('--metadata')} and the image or element options", images_etc),
        ):
            if given and name in self.extra:
                raise UsageError(f"{n('--set')} {name} would replace {option}: give it one way")
        for name, given in (
            ("image_list", omni_images),
            ("element_list", bool(self.elements)),
            ("watermark", self.watermark is not None),
        ):
            if given and name in self.metadata:
                raise UsageError(
                    f"{n('--metadata')} {name} and the options that make it: give it one way"
                )


# How each option is spelled as a batch line's key (CLI.md).
LINE_KEY_OF = {
    "-i/--image": "images", "--ref": "refs", "--first-frame": "first_frame",
    "--end-frame": "end_frame", "--video": "videos", "--video-refer": "video_refer",
    "--keep-sound": "keep_sound", "--element": "elements", "--audio": "audio",
    "--mode": "mode", "--duration": "duration", "--aspect-ratio": "aspect_ratio",
    "--metadata": "metadata", "--set": "set", "--watermark": "watermark",
    "--business-id": "business_id",
}  # fmt: skip


# --- warnings ----------------------------------------------------------------------------------


def _named_images(body: Mapping[str, Any]) -> set[int]:
    prompt = str(body.get("prompt", ""))
    return {int(n) for kind, n in PLACEHOLDER.findall(prompt) if kind == "image"}


def notes(body: Mapping[str, Any]) -> list[str]:
    """What the service will do to the request that the user may not expect."""
    if body.get("image_urls") and not _named_images(body):
        return ["the prompt has no <<<image_N>>>: the service will prepend <<<image_1>>>"]
    return []


def warnings(body: Mapping[str, Any]) -> list[str]:
    """Reference images the prompt never names: in the Omni form the service does not
    prepend a placeholder for them (the request is still sent)."""
    metadata = body.get("metadata")
    image_list = metadata.get("image_list", []) if isinstance(metadata, dict) else []
    named = _named_images(body)
    return [
        f"reference image {n} ({entry.get('image_url')}) is not named in the prompt; "
        f"refer to it as <<<image_{n}>>> (the service does not add it for you)"
        for n, entry in enumerate(image_list, start=1)
        if isinstance(entry, dict) and "type" not in entry and n not in named
    ]


# --- batch lines ---------------------------------------------------------------------------------

# A batch line's keys (CLI.md), beside "output" which is the batch's own.
LINE_KEYS = (
    "prompt", "images", "refs", "first_frame", "end_frame", "videos", "video_refer",
    "keep_sound", "elements", "audio", "watermark", "mode", "duration", "aspect_ratio", "model",
    "business_id", "metadata", "set",
)  # fmt: skip


def from_line(
    data: Mapping[str, Any], base_dir: Path, setting: Setting, duration_from: str | None = None
) -> Request:
    """A batch line's object -> a Request; relative image paths are relative to `base_dir`;
    `duration_from`: where the setting a line without `duration` takes was set."""

    def image(ref: Any, key: str) -> Image:
        if not isinstance(ref, str) or not ref.strip():  # "": not the file's own folder
            raise UsageError(f"`{key}` must be a URL or a file path")
        relative = not ("://" in ref or ref.startswith("data:") or Path(ref).is_absolute())
        return classify_image(str(base_dir / ref) if relative else ref)

    def strings(key: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"`{key}` must be a list of strings")
        return value

    def pick(key: str, kind: type, default: Any = None) -> Any:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            names = {int: "a number", str: "a string", bool: "true or false", dict: "an object"}
            raise UsageError(f"`{key}` must be {names[kind]}")
        return value

    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError("`prompt` must be a non-empty string")

    def element(given: Any) -> Element:
        if isinstance(given, str) and not given.strip().isdigit() and "://" not in given:
            role, eq, ref = given.rpartition("=") if "=" in given else ("", "", given)
            path = ref if Path(ref).is_absolute() else str(base_dir / ref)  # relative: the file's
            given = f"{role}{eq}{path}"
        return classify_element(given, "`elements`")

    elements = data.get("elements", [])
    if not isinstance(elements, list):
        raise UsageError("`elements` must be a list ([ROLE=]URL, a local image, an id, or {...})")
    first, end = pick("first_frame", str), pick("end_frame", str)
    return Request(
        prompt=prompt,
        model=pick("model", str, setting("model")),
        mode=pick("mode", str, setting("mode")),
        duration=pick("duration", int, setting("duration")),
        aspect_ratio=pick("aspect_ratio", str, setting("aspect_ratio")),
        images=[image(ref, "images") for ref in strings("images")],
        refs=[image(ref, "refs") for ref in strings("refs")],
        first_frame=image(first, "first_frame") if first is not None else None,
        end_frame=image(end, "end_frame") if end is not None else None,
        videos=[classify_video(v) for v in strings("videos")],
        video_refer=pick("video_refer", str),
        keep_sound=pick("keep_sound", bool, False),
        elements=[element(e) for e in elements],
        audio=pick("audio", bool),
        watermark=pick("watermark", bool),
        business_id=pick("business_id", str),
        metadata=dict(pick("metadata", dict, {})),
        extra=dict(pick("set", dict, {})),
        from_line=True,
        duration_from=None if "duration" in data else duration_from,
    )
