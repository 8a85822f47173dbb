"""The request model: options -> body, and every check made before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_cli.api import request
from kling_cli.api.request import Request
from kling_cli.errors import UsageError

A, B = "https://x.example/a.png", "https://x.example/b.png"
CLIP = "https://x.example/clip.mp4"


def body(prompt: str = "a cat", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(model="kling-v3-omni", mode="std", duration=5, aspect_ratio="16:9")
    args.update(kw)
    return Request(prompt=prompt, **args).body()


def url(u: str) -> request.Image:
    return ("url", u)


def test_defaults_make_a_minimal_body() -> None:
    assert body() == {
        "model": "kling-v3-omni", "prompt": "a cat", "mode": "std", "duration": 5,
        "aspect_ratio": "16:9",
    }  # fmt: skip


def test_the_official_omni_structures() -> None:
    b = body(
        "<<<image_1>>> to <<<image_3>>> past <<<image_2>>>, as <<<video_1>>>, <<<element_1>>>",
        first_frame=url(A), refs=[url(B)], end_frame=url(A), videos=[CLIP],
        video_refer="base", keep_sound=True, elements=[("id", 42)],
    )  # fmt: skip
    assert b["metadata"] == {
        "image_list": [
            {"image_url": A, "type": "first_frame"},
            {"image_url": B},
            {"image_url": A, "type": "end_frame"},
        ],
        "element_list": [{"element_id": 42}],
    }
    assert b["video_list"] == [
        {"video_url": CLIP, "refer_type": "base", "keep_original_sound": "yes"}
    ]
    assert "audio" not in b and "image_urls" not in b


def test_video_defaults_and_audio() -> None:
    b = body("x", videos=[CLIP])
    assert b["video_list"][0]["refer_type"] == "base"  # the service's own default (API.md 1c)
    assert b["video_list"][0]["keep_original_sound"] == "no"
    assert body(audio=True)["audio"] is True and body(audio=False)["audio"] is False


def test_duration_is_a_json_number() -> None:
    assert body(duration=10)["duration"] == 10
    with pytest.raises(UsageError):
        body(extra={"duration": "10"})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"mode": "ultra"}, "--mode"),
        ({"duration": 16}, "--duration"),
        ({"aspect_ratio": "4:3"}, "--aspect-ratio"),
        ({"prompt": "   "}, "empty"),
        ({"prompt": "<<<image_1>>> waves"}, "no images"),
        ({"prompt": "<<<image_2>>>", "images": [url(A)]}, "only 1 image"),
        ({"prompt": "<<<image_0>>>", "images": [url(A)]}, "numbered from 1"),
        ({"prompt": "<<<image_2>>>", "refs": [url(A)]}, "only 1 image"),
        ({"prompt": "<<<video_1>>>"}, "no videos"),
        ({"prompt": "<<<element_2>>>", "elements": [("id", 1)]}, "only 1 element"),
        ({"images": [url(A)], "refs": [url(B)]}, "number <<<image_N>>> twice"),
        ({"images": [url(A)], "first_frame": url(B)}, "number <<<image_N>>> twice"),
        ({"end_frame": url(A)}, "needs --first-frame"),
        ({"audio": True, "videos": [CLIP]}, "--audio"),
        ({"video_refer": "base"}, "apply to reference videos"),
        ({"keep_sound": True}, "apply to reference videos"),
        ({"videos": [CLIP], "video_refer": "motion"}, "--video-refer"),
        ({"images": [("url", "data:image/png;base64,AAAA")]}, "data: URLs"),
        ({"extra": {"audio": True, "video_list": []}}, "audio and video_list"),
        ({"extra": {"metadata": "x"}}, "metadata must be an object"),
        ({"extra": {"prompt": "other"}}, "would replace the prompt"),
        ({"images": [url(A)], "extra": {"image_urls": [B]}}, "would replace -i"),
        ({"refs": [url(A)], "extra": {"metadata": {}}}, "would replace --metadata"),
        ({"refs": [url(A)], "metadata": {"image_list": []}}, "give it one way"),
        ({"extra": {"audio": "yes"}}, "true or false"),
        ({"extra": {"x": float("nan")}}, "NaN"),
        ({"extra": {"x": float("inf")}}, "NaN and infinity"),
        ({"prompt": "caf\udce9 au lait"}, "not valid UTF-8"),
    ],
)
def test_invalid_requests_are_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")) as info:
        body(**kw)
    assert "\n" not in info.value.message  # one line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"metadata": {"image_list": [{"image_url": A, "type": "end_frame"}]}}, "end frame"),
        ({"image_urls": [A], "metadata": {"image_list": [{"image_url": B}]}}, "twice"),
        ({"video_list": [{"url": CLIP}]}, 'objects with "video_url"'),
        ({"metadata": {"image_list": A}}, "metadata.image_list must be a list"),
        ({"video_list": [{"video_url": CLIP}], "audio": True}, "audio and video_list"),
    ],
)
def test_the_lists_count_wherever_they_come_from(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        body(extra=extra)


def test_placeholders_count_against_lists_given_through_set_and_metadata() -> None:
    clips = [{"video_url": CLIP, "refer_type": "feature"}]  # passed on as given
    b = body(
        "<<<image_1>>> dances like <<<video_1>>> with <<<element_1>>>",
        metadata={"image_list": [{"image_url": A}], "element_list": [{"element_id": 7}]},
        extra={"video_list": clips},
    )
    assert b["video_list"] == clips and b["metadata"]["image_list"] == [{"image_url": A}]


def test_extra_fields_pass_through() -> None:
    b = body(extra={"negative_prompt": "blur", "duration": 15, "cfg_scale": 0.5})
    assert b["negative_prompt"] == "blur" and b["duration"] == 15 and b["cfg_scale"] == 0.5


def test_local_images_are_uploaded_once_and_replaced_by_their_urls(tmp_path: Path) -> None:
    png = tmp_path / "me.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    wanted = Request(
        "<<<image_1>>> <<<image_2>>> <<<image_3>>>", "m", "std", 5, "16:9",
        first_frame=("file", png), refs=[("file", png), url(B)], end_frame=("file", png),
    )  # fmt: skip
    assert wanted.local_files() == [png]
    entries = wanted.body({png: A})["metadata"]["image_list"]
    assert [e["image_url"] for e in entries] == [A, A, B, A]
    assert wanted.body()["metadata"]["image_list"][0]["image_url"] == str(png)  # a dry run


def test_unnamed_reference_images_are_warned_about() -> None:
    b = body("<<<image_2>>> smiles", refs=[url(A), url(B)])
    (warning,) = request.warnings(b)
    assert "reference image 1" in warning and A in warning
    assert request.warnings(body("x", first_frame=url(A))) == []  # a frame needs no name
    assert request.notes(body("x", images=[url(A)])) == [
        "the prompt has no <<<image_N>>>: the service will prepend <<<image_1>>>"
    ]
    assert request.notes(body("x", refs=[url(A)])) == []


def test_a_local_video_is_refused_with_a_reason() -> None:
    assert request.classify_video(CLIP) == CLIP
    for bad in ("clip.mp4", "/tmp/clip.mp4", "ftp://x/clip.mp4"):
        with pytest.raises(UsageError, match="public http") as info:
            request.classify_video(bad)
        assert info.value.hint and "images only" in info.value.hint


def test_batch_line_keys_name_themselves_in_messages(tmp_path: Path) -> None:
    def line(**data: Any) -> Request:
        return request.from_line(data, tmp_path, {"model": "m", "mode": "std",
                                 "duration": 5, "aspect_ratio": "16:9"}.__getitem__)  # fmt: skip

    wanted = line(prompt="<<<image_1>>>", refs=[A], videos=[CLIP], elements=[3], audio=False)
    assert wanted.body()["metadata"]["image_list"] == [{"image_url": A}]
    with pytest.raises(UsageError, match="`end_frame` needs `first_frame`"):
        line(prompt="x", end_frame=A)
    with pytest.raises(UsageError, match="`elements`: an element is"):
        line(prompt="x", elements=[True])
    with pytest.raises(UsageError, match="`keep_sound` must be true or false"):
        line(prompt="x", videos=[CLIP], keep_sound="yes")


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=6), st.integers(0, 7))
def test_image_placeholder_check(refs: list[int], count: int) -> None:
    prompt = " ".join(f"<<<image_{n}>>>" for n in refs) or "plain"
    images = [url(f"https://x.example/{i}.png") for i in range(count)]
    if all(1 <= n <= count for n in refs):
        body(prompt, refs=images)
    else:
        with pytest.raises(UsageError):
            body(prompt, refs=images)


@given(st.text(min_size=1).filter(lambda k: "=" not in k and k.strip()), st.text())
def test_assignment_value_is_json_or_string(key: str, raw: str) -> None:
    k, value = request.parse_assignment(f"{key}={raw}", "--set")
    assert k == key.strip()
    try:
        assert value == json.loads(raw) or value != value  # NaN
    except ValueError:
        assert value == raw


@pytest.mark.parametrize("text", ["novalue", "=x", ""])
def test_assignment_needs_key_and_equals(text: str) -> None:
    with pytest.raises(UsageError):
        request.parse_assignment(text, "--set")
