"""The built-in sandbox, over real loopback sockets: lifecycle, rules, markers, files, faults."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kling_cli.clock import FakeClock
from kling_cli.sandbox import faults as fk
from kling_cli.sandbox.defaults import FOREGROUND_LOG_SIZE, IN_PROCESS, LOG_SIZE, QUICK
from kling_cli.sandbox.server import DELETE, Sandbox, SandboxConfig, parse_multipart, run

AUTH = {"Authorization": "Bearer test-key"}
GENERATIONS = "/v1/videos/generations"
UPLOADS = "/v1/uploads/images"
BODY = {"model": "kling-v3-omni", "prompt": "a red fox in the snow"}


@pytest.fixture
def make() -> Iterator[Callable[..., Sandbox]]:
    """make(**config) -> a started sandbox, stopped after the test."""
    started: list[Sandbox] = []

    def factory(**config: Any) -> Sandbox:
        config = {**QUICK._asdict(), **config}
        sb = Sandbox(config=SandboxConfig(**config)).start()
        started.append(sb)
        return sb

    yield factory
    for sb in started:
        sb.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sb(make: Callable[..., Sandbox], clock: FakeClock) -> Sandbox:
    return make(clock=clock.now, queue_seconds=1.0, run_seconds=3.0)


def post(sb: Sandbox, body: object = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    kwargs.setdefault("timeout", 5)
    return requests.post(sb.base_url + GENERATIONS, json=BODY if body is None else body, **kwargs)


def get_task(sb: Sandbox, task_id: str) -> requests.Response:
    return requests.get(f"{sb.base_url}{GENERATIONS}/{task_id}", headers=AUTH, timeout=5)


def finished(sb: Sandbox, clock: FakeClock, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, jump the fake clock past the lifecycle, and return the final task answer."""
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text
    clock.sleep(1000)
    view = get_task(sb, answer.json()["id"]).json()
    assert isinstance(view, dict)
    return view


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# -- lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_queued_in_progress_completed_and_download(make: Callable[..., Sandbox]) -> None:
    clock = FakeClock()
    sb = make(queue_seconds=0.2, run_seconds=0.6, clock=clock.now)
    answer = post(sb, {**BODY, "metadata": {"k": "v"}})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    task = answer.json()
    assert re.fullmatch(r"video_[0-9A-HJKMNP-TV-Z]{26}", task["id"])
    assert task["object"] == "generation.task"
    assert task["model"] == "kling-v3-omni"
    assert (task["status"], task["progress"]) == ("queued", 0)
    assert isinstance(task["created_at"], int) and abs(task["created_at"] - time.time()) < 5
    assert task["metadata"] == {"k": "v"}
    assert sb.tasks_created == 1

    seen: list[tuple[str, int]] = []
    with requests.Session() as session:
        for _ in range(100):  # 0.05 s apart on the sandbox's clock: done after 16
            view = session.get(f"{sb.base_url}{GENERATIONS}/{task['id']}", headers=AUTH).json()
            seen.append((view["status"], view["progress"]))
            if view["status"] == "completed":
                break
            clock.sleep(0.05)
    assert seen[-1] == ("completed", 100)
    statuses = [s for s, _ in seen]
    assert statuses.index("queued") < statuses.index("in_progress") < statuses.index("completed")
    running = [p for s, p in seen if s == "in_progress"]
    assert running == sorted(running) and all(0 <= p <= 99 for p in running)

    assert view["expires_at"] == view["completed_at"] + 24 * 3600
    url = f"{sb.file_base_url}/videos/{task['id']}.mp4"
    assert view["result"] == {"type": "video", "data": [{"url": url}]}
    video = requests.get(url, timeout=5)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.headers["Accept-Ranges"] == "bytes"
    assert video.content == sb.clip_bytes("16:9") == sb.clip_bytes()
    assert video.content[4:8] == b"ftyp"


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "1:1"])
def test_clip_follows_aspect_ratio(sb: Sandbox, clock: FakeClock, ratio: str) -> None:
    view = finished(sb, clock, {**BODY, "aspect_ratio": ratio})
    video = requests.get(view["result"]["data"][0]["url"], timeout=5)
    assert video.content == sb.clip_bytes(ratio)
    assert len(video.content) < 20_000


def test_clips_differ_and_unknown_ratio_is_an_error(sb: Sandbox) -> None:
    assert len({sb.clip_bytes(r) for r in ("16:9", "9:16", "1:1")}) == 3
    with pytest.raises(ValueError):
        sb.clip_bytes("4:3")


def test_video_is_404_until_completed(sb: Sandbox, clock: FakeClock) -> None:
    task_id = post(sb).json()["id"]
    url = f"{sb.file_base_url}/videos/{task_id}.mp4"
    assert requests.get(url, timeout=5).status_code == 404
    clock.sleep(2)  # in progress
    assert get_task(sb, task_id).json()["status"] == "in_progress"
    assert requests.get(url, timeout=5).status_code == 404
    clock.sleep(10)
    assert requests.get(url, timeout=5).status_code == 200
    assert requests.get(f"{sb.file_base_url}/videos/video_NOPE.mp4", timeout=5).status_code == 404


# -- validation --------------------------------------------------------------------------------

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"prompt": "x"}, "model", "model"),
    ({"model": 5, "prompt": "x"}, "model", "model"),
    ({"model": "m"}, "prompt", "prompt"),
    ({"model": "m", "prompt": "  "}, "prompt", "prompt"),
    ({**BODY, "mode": "turbo"}, "mode", "std, pro"),
    ({**BODY, "duration": "5"}, "duration", "integer"),
    ({**BODY, "duration": 5.0}, "duration", "integer"),
    ({**BODY, "duration": True}, "duration", "integer"),
    ({**BODY, "duration": 16}, "duration", "integer"),
    ({**BODY, "aspect_ratio": "4:3"}, "aspect_ratio", "16:9"),
    ({**BODY, "image_urls": "https://a/b.png"}, "image_urls", "http(s)"),
    ({**BODY, "image_urls": ["ftp://a/b.png"]}, "image_urls", "http(s)"),
    ({**BODY, "image_urls": [3]}, "image_urls", "http(s)"),
    (
        {**BODY, "image_urls": ["data:image/png;base64,AAAA"]},
        "image_urls",
        "base64/data URLs are not supported; upload the image first",
    ),
    ({**BODY, "prompt": "<<<image_0>>> x", "image_urls": ["https://a/1.png"]}, "prompt", "image_0"),
    ({**BODY, "prompt": "<<<image_2>>> x", "image_urls": ["https://a/1.png"]}, "prompt", "image_2"),
    ({**BODY, "prompt": "<<<image_1>>> x"}, "prompt", "image_1"),
    ({**BODY, "metadata": ["a"]}, "metadata", "object"),
]

# The official Omni form (API.md section 1b).
IMG = "https://example.com/a.png"
VID = "https://example.com/v.mp4"
FIRST = {"image_url": IMG, "type": "first_frame"}
END = {"image_url": IMG, "type": "end_frame"}


def omni(prompt: str = "a red fox", **fields: Any) -> dict[str, Any]:
    """A body of the Omni form: `image_list` and `element_list` go into metadata."""
    metadata = {k: fields.pop(k) for k in ("image_list", "element_list") if k in fields}
    return {**BODY, "prompt": prompt, **fields, **({"metadata": metadata} if metadata else {})}


OMNI_INVALID: list[tuple[dict[str, Any], str, str]] = [
    (omni(image_list="x"), "metadata.image_list", "list of objects"),
    (omni(image_list=[IMG]), "metadata.image_list", "list of objects"),
    (omni(image_list=[{}]), "metadata.image_list", "image_list[0].image_url"),
    (omni(image_list=[{"image_url": "ftp://a/b.png"}]), "metadata.image_list", "http(s)"),
    (omni(image_list=[{"image_url": "data:image/png;base64,AA"}]), "metadata.image_list", "upload"),
    (omni(image_list=[{"image_url": IMG, "type": "middle"}]), "metadata.image_list", "first_frame"),
    (omni(image_list=[END]), "metadata.image_list", "end frame alone"),
    (omni(image_list=[{"image_url": IMG}, END]), "metadata.image_list", "end frame alone"),
    (omni(image_list=[FIRST, FIRST]), "metadata.image_list", "only one first_frame"),
    (omni(image_list=[FIRST, END, END]), "metadata.image_list", "only one end_frame"),
    (omni(video_list={"video_url": VID}), "video_list", "list of objects"),
    (omni(video_list=[{"url": VID}]), "video_list", "video_list[0].video_url"),
    (omni(video_list=[{"video_url": "file:///v.mp4"}]), "video_list", "http(s)"),
    (
        omni(video_list=[{"video_url": VID, "refer_type": "motion"}]),
        "video_list",
        "base or feature",
    ),
    (omni(video_list=[{"video_url": VID, "keep_original_sound": True}]), "video_list", "yes or no"),
    (omni(element_list=[{"element_id": True}]), "metadata.element_list", "integer"),
    (omni(element_list=[{"element_id": "12"}]), "metadata.element_list", "integer"),
    (omni(element_list=[{"element_id": 12.0}]), "metadata.element_list", "integer"),
    (omni(element_list=[{"id": 12}]), "metadata.element_list", "element_id"),
    (omni(element_list=[12]), "metadata.element_list", "list of objects"),
    (omni(audio="true"), "audio", "true or false"),
    (omni(audio=1), "audio", "true or false"),
    (omni(audio=True, video_list=[{"video_url": VID}]), "video_list", "audio and video_list"),
    (omni(image_urls=[IMG], image_list=[{"image_url": IMG}]), "image_urls", "metadata.image_list"),
    # Placeholders: each counted in its own list, from 1.
    (omni("<<<video_1>>> x"), "prompt", "<<<video_1>>> refers to a missing video: 0 in video_list"),
    (omni("<<<video_2>>> x", video_list=[{"video_url": VID}]), "prompt", "<<<video_2>>>"),
    (omni("<<<video_0>>> x", video_list=[{"video_url": VID}]), "prompt", "<<<video_0>>>"),
    (omni("<<<element_1>>> x"), "prompt", "missing element: 0 in metadata.element_list"),
    (omni("<<<element_2>>>", element_list=[{"element_id": 1}]), "prompt", "<<<element_2>>>"),
    (omni("<<<image_-1>>>", image_list=[{"image_url": IMG}]), "prompt", "<<<image_-1>>>"),
    (omni("<<<image_2>>>", image_list=[{"image_url": IMG}]), "prompt", "1 in metadata.image_list"),
    # image_list is the image numbering when given (an empty image_urls beside it is no clash).
    (omni("<<<image_1>>>", image_urls=[], image_list=[]), "prompt", "0 in metadata.image_list"),
    # A video or an element is no image.
    (omni("<<<image_1>>>", video_list=[{"video_url": VID}]), "prompt", "<<<image_1>>>"),
    (omni("<<<image_1>>>", element_list=[{"element_id": 1}]), "prompt", "<<<image_1>>>"),
]


@pytest.mark.parametrize(("body", "param", "message"), INVALID + OMNI_INVALID)
def test_invalid_generation_bodies(
    sb: Sandbox, body: dict[str, Any], param: str, message: str
) -> None:
    answer = post(sb, body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_parameter"
    assert error["param"] == param
    assert message in error["message"]
    assert sb.tasks_created == 0


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b"", b"\xff\xfe"])
def test_body_must_be_a_json_object(sb: Sandbox, raw: bytes) -> None:
    answer = requests.post(
        sb.base_url + GENERATIONS,
        data=raw,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] is None


def test_accepted_variants_and_stored_prompt(sb: Sandbox) -> None:
    body = {
        **BODY,
        "model": "some-other-model",
        "mode": "pro",
        "duration": 10,
        "aspect_ratio": "1:1",
        "audio": True,
        "future_field": {"x": 1},
        "image_urls": ["https://example.com/a.png", "http://example.com/b.jpg"],
    }
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert task["model"] == "some-other-model" and "future_field" not in task
    assert sb.task(task["id"]).prompt == "<<<image_1>>>a red fox in the snow"
    assert sb.log[-1].json["future_field"] == {"x": 1}  # recorded, though echoed nowhere

    referenced = {**body, "prompt": "<<<image_2>>> then <<<image_1>>>"}
    task_id = post(sb, referenced).json()["id"]
    assert sb.task(task_id).prompt == "<<<image_2>>> then <<<image_1>>>"
    assert post(sb, {**BODY, "video_list": [{"video_url": "https://v/1.mp4"}]}).status_code == 200
    assert sb.tasks_created == 3


def test_omni_form_is_accepted_and_its_prompt_kept_as_sent(sb: Sandbox) -> None:
    prompt = (
        "<<<image_1>>> to <<<image_2>>>, like <<<image_3>>>, "
        "moving as <<<video_1>>> with <<<element_1>>>"
    )
    body = omni(
        prompt,
        image_list=[FIRST, END, {"image_url": "http://example.com/ref.jpg"}],
        video_list=[{"video_url": VID, "refer_type": "feature", "keep_original_sound": "no"}],
        element_list=[{"element_id": 42, "note": "extra fields pass"}],
        audio=False,  # false goes with videos; only true excludes them
    )
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text
    task = answer.json()
    assert task["metadata"] == body["metadata"]
    assert sb.task(task["id"]).prompt == prompt
    assert sb.task(task["id"]).body == body


@pytest.mark.parametrize(
    "body",
    [
        omni(image_list=[{"image_url": IMG}]),  # a reference image, not referenced in the prompt
        omni(image_list=[FIRST]),  # a first frame alone
        omni(image_list=[{"image_url": IMG}, END, FIRST]),  # any order; the end frame has a first
        omni(video_list=[{"video_url": VID}]),
        omni(element_list=[{"element_id": 7}]),
        omni(image_list=[], element_list=[], video_list=[]),
        omni(image_urls=[IMG], video_list=[{"video_url": VID}]),  # a video_list makes it Omni
        omni(image_urls=[IMG], element_list=[{"element_id": 7}]),
        omni(image_urls=[], image_list=[FIRST]),  # an empty image_urls numbers nothing
        omni(audio=True, video_list=[]),  # no video to clash with
        omni(audio=True),
    ],
)
def test_omni_form_prepends_nothing(sb: Sandbox, body: dict[str, Any]) -> None:
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text
    assert sb.task(answer.json()["id"]).prompt == "a red fox"


def test_seed_form_still_prepends_the_first_image(sb: Sandbox) -> None:
    task_id = post(sb, omni(image_urls=[IMG], metadata={"k": 1})).json()["id"]
    assert sb.task(task_id).prompt == "<<<image_1>>>a red fox"


# -- the newest revision (API.md 1c): durations, elements, watermark, limits -------------------


def refusal(answer: requests.Response) -> dict[str, Any]:
    """The error object of a 400 invalid_parameter answer."""
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert isinstance(error, dict)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_parameter")
    return error


@pytest.mark.parametrize(
    ("model", "duration"),
    [
        *[("kling-v3-omni", n) for n in (3, 4, 7, 15)],
        *[("kling-v3", n) for n in (3, 15)],
        *[("kling-video-o1", n) for n in (3, 10)],
        *[("kling-v2-6", n) for n in (5, 10)],
        *[("kling-3.0-turbo", n) for n in (3, 15)],
        *[("someone-elses-model", n) for n in (1, 2, 16, 3600)],
    ],
)
def test_duration_within_the_models_range(sb: Sandbox, model: str, duration: int) -> None:
    body = {**BODY, "model": model, "duration": duration}
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text
    assert sb.task(answer.json()["id"]).body == body


@pytest.mark.parametrize(
    ("model", "duration", "allowed"),
    [
        ("kling-v3-omni", 2, "3 to 15 for kling-v3-omni"),
        ("kling-v3-omni", 16, "3 to 15 for kling-v3-omni"),
        ("kling-v3-omni", 0, "3 to 15"),
        ("kling-v3", 2, "3 to 15 for kling-v3"),
        ("kling-v3", 16, "3 to 15 for kling-v3"),
        ("kling-video-o1", 2, "3 to 10 for kling-video-o1"),
        ("kling-video-o1", 11, "3 to 10 for kling-video-o1"),
        ("kling-v2-6", 7, "5 or 10 for kling-v2-6"),
        ("kling-v2-6", 3, "5 or 10 for kling-v2-6"),
        ("kling-v2-6", 15, "5 or 10 for kling-v2-6"),
        ("kling-3.0-turbo", 16, "3 to 15 for kling-3.0-turbo"),
        ("someone-elses-model", 0, "above 0 for someone-elses-model"),
        ("someone-elses-model", -5, "above 0"),
        # Never a bool, a float or a string, whatever the model.
        ("someone-elses-model", True, "integer"),
        ("someone-elses-model", 5.0, "integer"),
        ("someone-elses-model", "5", "integer"),
        ("kling-v3-omni", 5.0, "integer"),
        ("kling-v3-omni", None, "integer"),
    ],
)
def test_duration_outside_the_models_range(
    sb: Sandbox, model: str, duration: object, allowed: str
) -> None:
    error = refusal(post(sb, {**BODY, "model": model, "duration": duration}))
    assert error["param"] == "duration"
    assert allowed in error["message"]
    assert sb.tasks_created == 0


def test_cost_follows_the_seconds(sb: Sandbox) -> None:
    """0.2 a second (std 5 s costs 1, 10 s costs 2); 5 s when the body names none."""
    for seconds in (3, 15, 7):
        assert post(sb, {**BODY, "duration": seconds}).status_code == 200
    assert post(sb).status_code == 200  # no duration: 5 s
    assert post(sb, {**BODY, "duration": 15, "mode": "pro"}).status_code == 200  # 3 * 1.5
    assert balance(sb).json()["used_balance"] == pytest.approx(0.6 + 3 + 1.4 + 1 + 4.5)


def test_an_unknown_models_huge_duration_keeps_the_balance_a_number(sb: Sandbox) -> None:
    body = {**BODY, "model": "someone-elses-model", "duration": 10**400}
    assert post(sb, body).status_code == 200
    assert post(sb, body).status_code == 200
    answer = balance(sb)
    assert answer.status_code == 200
    assert answer.json()["used_balance"] == 2 * 24 * 3600 / 5  # billed as a day each


URL_ELEMENT = {"url": "https://example.com/character.jpg", "type": "image", "role": "subject"}


@pytest.mark.parametrize(
    "elements",
    [
        [URL_ELEMENT],  # the page's own example
        [{"url": "https://example.com/e.png"}],  # type and role optional
        [{"url": "http://example.com/e.mp4", "type": "video"}],
        [{"url": IMG, "role": "Main_char-2"}],
        [{"element_id": 1}, {"element_id": 987654321}],  # Kling's library form
        [URL_ELEMENT, {"element_id": 7}, {"url": VID, "type": "video", "note": "extra passes"}],
    ],
)
def test_element_list_in_both_forms(sb: Sandbox, elements: list[dict[str, Any]]) -> None:
    prompt = " ".join(f"<<<element_{n}>>>" for n in range(1, len(elements) + 1))
    answer = post(sb, omni(prompt, element_list=elements))
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"] == {"element_list": elements}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "needs a url"),
        ({"type": "image", "role": "subject"}, "needs a url"),
        ({"url": "ftp://example.com/e.png"}, "url must be an http(s) URL"),
        ({"url": "example.com/e.png"}, "url must be an http(s) URL"),
        ({"url": 5}, "url must be an http(s) URL"),
        ({"url": "data:image/png;base64,AAAA"}, "upload the image first"),
        ({"url": IMG, "type": "audio"}, "type must be image or video"),
        ({"url": IMG, "type": None}, "type must be image or video"),
        ({"url": IMG, "role": ""}, "role must be a word"),
        ({"url": IMG, "role": "main character"}, "role must be a word"),
        ({"url": IMG, "role": "who?"}, "role must be a word"),
        ({"url": IMG, "role": 3}, "role must be a word"),
        ({"element_id": 0}, "element_id must be a positive integer"),
        ({"element_id": -4}, "element_id must be a positive integer"),
        ({"element_id": True}, "element_id must be a positive integer"),
        ({"element_id": "12"}, "element_id must be a positive integer"),
        ({"element_id": 12.0}, "element_id must be a positive integer"),
        ({"element_id": 12, "url": IMG}, "either a url or an element_id, not both"),
    ],
)
def test_bad_element_entries_are_named(sb: Sandbox, entry: dict[str, Any], message: str) -> None:
    error = refusal(post(sb, omni(element_list=[{"element_id": 1}, entry])))
    assert error["param"] == "metadata.element_list"
    assert error["message"].startswith("metadata.element_list[1]: ")  # the entry, from 0
    assert message in error["message"]
    assert sb.tasks_created == 0


@pytest.mark.parametrize("value", [True, False])
def test_watermark_is_a_boolean(sb: Sandbox, value: bool) -> None:
    answer = post(sb, {**BODY, "metadata": {"watermark": value}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"] == {"watermark": value}


@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}])
def test_watermark_refused_unless_a_boolean(sb: Sandbox, value: object) -> None:
    error = refusal(post(sb, {**BODY, "metadata": {"watermark": value}}))
    assert error["param"] == "metadata.watermark"
    assert "true or false" in error["message"]


def images(n: int) -> list[dict[str, str]]:
    return [{"image_url": f"https://example.com/{i}.png"} for i in range(n)]


def elements(n: int) -> list[dict[str, int]]:
    return [{"element_id": i + 1} for i in range(n)]


A_VIDEO = [{"video_url": VID}]


@pytest.mark.parametrize(
    "body",
    [
        omni(image_list=images(7)),
        omni(element_list=elements(7)),
        omni(image_list=images(4), element_list=elements(3)),
        omni(image_list=images(4), video_list=A_VIDEO),
        omni(image_list=images(2), element_list=elements(2), video_list=A_VIDEO),
        omni(element_list=elements(4), video_list=A_VIDEO),
        omni(image_list=images(7), video_list=[]),  # an empty video_list is no reference video
        # The seed's image_urls are not among the counted lists (API.md 1c names two).
        omni(image_urls=[IMG] * 3, element_list=elements(7)),
    ],
)
def test_images_and_elements_within_the_limits(sb: Sandbox, body: dict[str, Any]) -> None:
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (omni(image_list=images(8)), "metadata.image_list", "at most 7 images and elements"),
        (omni(element_list=elements(8)), "metadata.element_list", "together, not 8"),
        (omni(image_list=images(4), element_list=elements(4)), "metadata.element_list", "not 8"),
        (omni(image_list=images(7), element_list=elements(1)), "metadata.element_list", "not 8"),
        (
            omni(image_list=images(5), video_list=A_VIDEO),
            "metadata.image_list",
            "at most 4 images and elements together with a reference video in video_list, not 5",
        ),
        (omni(element_list=elements(5), video_list=A_VIDEO), "metadata.element_list", "not 5"),
        (
            omni(image_list=images(3), element_list=elements(2), video_list=A_VIDEO),
            "metadata.element_list",
            "at most 4",
        ),
        (
            omni(video_list=[{"video_url": VID}, {"video_url": VID, "refer_type": "feature"}]),
            "video_list",
            "video_list holds at most 1 video, not 2",
        ),
    ],
)
def test_images_elements_and_videos_beyond_the_limits(
    sb: Sandbox, body: dict[str, Any], param: str, message: str
) -> None:
    error = refusal(post(sb, body))
    assert (error["param"], message in error["message"]) == (param, True), error
    assert sb.tasks_created == 0


def test_refer_type_may_be_left_out(sb: Sandbox) -> None:
    """`refer_type` defaults to base at the service: absent is fine, and kept as sent."""
    body = omni("<<<video_1>>> faster", video_list=[{"video_url": VID}])
    answer = post(sb, body)
    assert answer.status_code == 200, answer.text
    assert sb.task(answer.json()["id"]).body["video_list"] == [{"video_url": VID}]


def test_prompt_of_at_most_2500_characters(sb: Sandbox) -> None:
    assert post(sb, {**BODY, "prompt": "a" * 2500}).status_code == 200
    assert post(sb, {**BODY, "prompt": "é" * 2500}).status_code == 200  # characters, not bytes
    error = refusal(post(sb, {**BODY, "prompt": "a" * 2501}))
    assert error["param"] == "prompt"
    assert error["message"] == "prompt must be at most 2500 characters, not 2501"
    assert sb.tasks_created == 2


# -- auth, 404, 405 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic x"}]
)
def test_api_needs_a_bearer_key(make: Callable[..., Sandbox], headers: dict[str, str]) -> None:
    sb = make(faults=1.0)  # faults never hit a request without a key
    for answer in (
        post(sb, headers=headers),
        requests.get(f"{sb.base_url}{GENERATIONS}/x", headers=headers, timeout=5),
    ):
        assert answer.status_code == 401
        assert answer.json() == {
            "error": {
                "message": "Invalid or missing API key",
                "type": "authentication_error",
                "code": "invalid_api_key",
            }
        }
    assert sb.tasks_created == 0
    assert not sb.faults_injected
    assert [r.status for r in sb.log] == [401, 401]


def test_unknown_task_path_and_method(sb: Sandbox) -> None:
    answer = get_task(sb, "video_UNKNOWN")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {
            "message": "task not found",
            "type": "invalid_request_error",
            "code": "task_not_found",
        }
    }
    assert requests.get(sb.base_url + "/v1/nothing", headers=AUTH, timeout=5).status_code == 404
    wrong = requests.get(sb.base_url + GENERATIONS, headers=AUTH, timeout=5)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert (
        requests.delete(f"{sb.base_url}{GENERATIONS}/x", headers=AUTH, timeout=5).status_code == 405
    )
    assert requests.post(sb.file_base_url + "/videos/x.mp4", timeout=5).status_code == 405
    assert requests.get(sb.file_base_url + "/elsewhere", timeout=5).status_code == 404


# -- markers -----------------------------------------------------------------------------------


def test_marker_fail(sb: Sandbox, clock: FakeClock) -> None:
    view = finished(sb, clock, {**BODY, "prompt": "[fail] a cat"})
    assert view["status"] == "failed"
    assert view["progress"] < 100
    assert view["error"] == {
        "code": "content_policy",
        "message": "sandbox: the prompt asked to fail ([fail])",
    }
    assert "result" not in view


def test_marker_fail_text(sb: Sandbox, clock: FakeClock) -> None:
    view = finished(sb, clock, {**BODY, "prompt": "a cat [fail-text]"})
    assert view["status"] == "failed"
    assert isinstance(view["error"], str)


def test_marker_no_video(sb: Sandbox, clock: FakeClock) -> None:
    view = finished(sb, clock, {**BODY, "prompt": "a cat [no-video]"})
    assert view["status"] == "completed"
    assert view["result"] == {"type": "video", "data": []}
    assert "http" not in str(view)


@pytest.mark.parametrize(
    ("marker", "where"),
    [
        ("top", lambda v: v["url"]),
        ("video_url", lambda v: v["video_url"]),
        ("result.url", lambda v: v["result"]["url"]),
        ("videos", lambda v: v["result"]["videos"][0]["url"]),
        ("list", lambda v: v["result"]["data"][0]["url"][0]),
    ],
)
def test_marker_url_places(
    sb: Sandbox, clock: FakeClock, marker: str, where: Callable[[dict[str, Any]], str]
) -> None:
    view = finished(sb, clock, {**BODY, "prompt": f"[url:{marker}] a cat"})
    url = where(view)
    assert url == f"{sb.file_base_url}/videos/{view['id']}.mp4"
    assert str(view).count(sb.file_base_url) == 1  # only in that place
    if marker == "list":
        assert view["result"]["data"][0]["url"] == [url]
    assert requests.get(url, timeout=5).content == sb.clip_bytes()


def test_marker_expired(sb: Sandbox, clock: FakeClock) -> None:
    view = finished(sb, clock, {**BODY, "prompt": "[expired] a cat"})
    assert view["status"] == "completed"
    assert view["expires_at"] < time.time()
    answer = requests.get(view["result"]["data"][0]["url"], timeout=5)
    assert answer.status_code == 410


def test_marker_slow(sb: Sandbox, clock: FakeClock) -> None:
    task_id = post(sb, {**BODY, "prompt": "[slow] a cat"}).json()["id"]
    clock.sleep(5)  # a normal task would be done by now (1 + 3 s)
    assert get_task(sb, task_id).json()["status"] == "queued"
    clock.sleep(20)
    assert get_task(sb, task_id).json()["status"] == "in_progress"
    clock.sleep(20)
    assert get_task(sb, task_id).json()["status"] == "completed"


def test_marker_stall(sb: Sandbox, clock: FakeClock) -> None:
    """[stall]: progress climbs, stops at 99, and the task stays in_progress forever."""
    task_id = post(sb, {**BODY, "prompt": "a cat [stall]"}).json()["id"]
    clock.advance(2.5)  # queued 1 s, then half of the 3 s run
    assert get_task(sb, task_id).json()["progress"] == 50
    for _ in range(3):
        clock.advance(1000)
        view = get_task(sb, task_id).json()
        assert (view["status"], view["progress"]) == ("in_progress", 99)
        assert "result" not in view and "completed_at" not in view
    assert requests.get(sb.state.video_url(task_id), timeout=5).status_code == 404
    running = post(sb, {**BODY, "prompt": "[STALL] [status:processing] a dog"}).json()["id"]
    clock.advance(1000)
    assert get_task(sb, running).json()["status"] == "processing"  # markers combine


def test_marker_stall_with_runs_of_no_time(make: Callable[..., Sandbox]) -> None:
    """`--run-seconds 0` and [stall]: a 500 'sandbox internal error: ZeroDivisionError'."""
    sb = make(queue_seconds=0.0, run_seconds=0.0)
    task_id = post(sb, {**BODY, "prompt": "a cat [stall]"}).json()["id"]
    view = get_task(sb, task_id).json()
    assert (view["status"], view["progress"]) == ("in_progress", 99)


def test_set_task_overrides_the_answer(sb: Sandbox, clock: FakeClock) -> None:
    task_id = post(sb).json()["id"]
    clock.sleep(100)
    sb.set_task(task_id, status="weird", result=[1], progress=DELETE)
    view = get_task(sb, task_id).json()
    assert view["status"] == "weird" and view["result"] == [1] and "progress" not in view
    assert requests.get(f"{sb.file_base_url}/videos/{task_id}.mp4", timeout=5).status_code == 404
    with pytest.raises(KeyError):
        sb.set_task("video_NOPE", status="x")


# -- status spellings ([status:WORD]) ----------------------------------------------------------

COMPLETED_SPELLINGS = ["completed", "succeed", "succeeded", "success"]
FAILED_SPELLINGS = ["failed", "cancelled", "canceled", "expired", "error"]
PENDING_SPELLINGS = ["queued", "submitted", "in_progress", "processing", "pending", "running"]


def video_status(sb: Sandbox, task_id: str) -> int:
    return requests.get(f"{sb.file_base_url}/videos/{task_id}.mp4", timeout=5).status_code


@pytest.mark.parametrize("word", COMPLETED_SPELLINGS)
def test_marker_status_completed_spellings(
    make: Callable[..., Sandbox], clock: FakeClock, word: str
) -> None:
    sb = make(clock=clock.now, queue_seconds=1, run_seconds=3, max_running=1)
    view = finished(sb, clock, {**BODY, "prompt": f"a cat [status:{word}]"})
    assert (view["status"], view["progress"]) == (word, 100)
    assert "error" not in view and view["expires_at"] > view["completed_at"]
    assert video_status(sb, view["id"]) == 200
    assert requests.get(view["result"]["data"][0]["url"], timeout=5).content == sb.clip_bytes()
    assert post(sb).status_code == 200  # final: it no longer counts against max_running


@pytest.mark.parametrize("word", FAILED_SPELLINGS)
def test_marker_status_failed_spellings(
    make: Callable[..., Sandbox], clock: FakeClock, word: str
) -> None:
    sb = make(clock=clock.now, queue_seconds=1, run_seconds=3, max_running=1)
    view = finished(sb, clock, {**BODY, "prompt": f"[status:{word}] a cat"})
    assert view["status"] == word and view["progress"] < 100
    assert view["error"] == {
        "code": word,
        "message": f"sandbox: the prompt asked for status {word} ([status:{word}])",
    }
    assert "result" not in view and "completed_at" not in view
    assert video_status(sb, view["id"]) == 404
    assert post(sb).status_code == 200  # final: it no longer counts against max_running


@pytest.mark.parametrize("word", [*PENDING_SPELLINGS, "weird_state"])
def test_marker_status_shown_while_running(
    make: Callable[..., Sandbox], clock: FakeClock, word: str
) -> None:
    sb = make(clock=clock.now, queue_seconds=1, run_seconds=3, max_running=1)
    task_id = post(sb, {**BODY, "prompt": f"a cat [status:{word}]"}).json()["id"]
    assert get_task(sb, task_id).json()["status"] == "queued"
    clock.sleep(2)
    view = get_task(sb, task_id).json()
    assert (view["status"], view["progress"]) == (word, 33)
    assert video_status(sb, task_id) == 404
    assert post(sb).status_code == 429  # still running
    clock.sleep(10)
    view = get_task(sb, task_id).json()
    assert (view["status"], view["progress"]) == ("completed", 100)
    assert video_status(sb, task_id) == 200


def test_marker_status_combines_with_fail_text(sb: Sandbox, clock: FakeClock) -> None:
    view = finished(sb, clock, {**BODY, "prompt": "[fail-text] [status:cancelled] a cat"})
    assert view["status"] == "cancelled"
    assert view["error"] == "sandbox: the prompt asked to fail ([fail-text])"
    # [fail] wins over a completed spelling: the task fails.
    assert finished(sb, clock, {**BODY, "prompt": "[fail] [status:succeed]"})["status"] == "failed"


def test_video_host_follows_an_overridden_completed_spelling(sb: Sandbox, clock: FakeClock) -> None:
    task_id = post(sb).json()["id"]
    clock.sleep(100)
    sb.set_task(task_id, status="Succeeded")
    assert video_status(sb, task_id) == 200
    sb.set_task(task_id, status="canceled")
    assert video_status(sb, task_id) == 404


# -- business ids (API.md 1c) ------------------------------------------------------------------

BID = "run-7:line.3_a"


def test_business_id_accepted(sb: Sandbox) -> None:
    for bid in ("a", "x" * 64, "0123-abc.DEF_ghi:jkl"):
        answer = post(sb, {**BODY, "client_business_id": bid})
        assert answer.status_code == 200, answer.text
        assert answer.json()["client_business_id"] == bid
    in_metadata = post(sb, {**BODY, "metadata": {"client_business_id": "meta-1"}})
    assert in_metadata.json()["client_business_id"] == "meta-1"
    assert in_metadata.json()["metadata"] == {"client_business_id": "meta-1"}  # as sent
    both = {**BODY, "client_business_id": "same", "metadata": {"client_business_id": "same"}}
    assert post(sb, both).json()["client_business_id"] == "same"
    bids = ["a", "x" * 64, "0123-abc.DEF_ghi:jkl", "meta-1", "same"]
    assert sb.business_id_counts() == dict.fromkeys(bids, 1)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("client_business_id", ""),
        ("client_business_id", "x" * 65),
        ("client_business_id", "order 12"),
        ("client_business_id", "order/12"),
        ("client_business_id", "order#12"),
        ("client_business_id", "commande-été"),
        ("client_business_id", "line\n"),
        ("client_business_id", 12),
        ("client_business_id", None),
        ("client_business_id", ["a"]),
        ("metadata.client_business_id", ""),
        ("metadata.client_business_id", 12),
    ],
)
def test_business_id_refused(sb: Sandbox, where: str, value: object) -> None:
    body: dict[str, Any] = {**BODY}
    if where.startswith("metadata."):
        body["metadata"] = {"client_business_id": value}
    else:
        body["client_business_id"] = value
    error = refusal(post(sb, body))
    assert error["param"] == where
    assert "1 to 64 letters, digits, '.', '_', ':' or '-'" in error["message"]
    assert sb.tasks_created == 0


def test_business_id_in_two_places_must_agree(sb: Sandbox) -> None:
    body = {**BODY, "client_business_id": "a", "metadata": {"client_business_id": "b"}}
    error = refusal(post(sb, body))
    assert error["param"] == "client_business_id"
    assert "differ" in error["message"]


def test_a_completed_task_answers_the_same_at_every_get(
    make: Callable[..., Sandbox], clock: FakeClock
) -> None:
    """A test's lifecycle clock runs ahead of wall time, so a task is done before its time by
    the wall: its completed_at (and expires_at) said 'now' at every GET, and two GETs a second
    apart differed (a test comparing kling's document with the sandbox's flaked under load)."""
    wall = [1_800_000_000.0]
    sb = make(clock=clock.now, wall_clock=lambda: wall[0], queue_seconds=1.0, run_seconds=3.0)
    task_id = post(sb).json()["id"]
    clock.advance(100)
    first = get_task(sb, task_id).json()
    wall[0] += 5
    assert first["status"] == "completed" and get_task(sb, task_id).json() == first


def test_business_id_stored_and_echoed_through_the_lifecycle(
    make: Callable[..., Sandbox], clock: FakeClock
) -> None:
    # The wall clock too is the fake one: completed_at must not tick between the two GETs.
    sb = make(clock=clock.now, wall_clock=clock.now, queue_seconds=1.0, run_seconds=3.0)
    submitted = post(sb, {**BODY, "client_business_id": BID}).json()
    assert submitted["client_business_id"] == BID
    task_id = submitted["id"]
    assert sb.task(task_id).business_id == BID
    statuses = []
    for step in (0.5, 2, 100):  # queued, in_progress, completed
        clock.advance(step)
        by_id = get_task(sb, task_id)
        by_bid = get_task(sb, BID)
        assert by_id.status_code == by_bid.status_code == 200
        assert by_id.json() == by_bid.json()  # the same answer, either way
        assert by_id.json()["client_business_id"] == BID
        statuses.append(by_id.json()["status"])
    assert statuses == ["queued", "in_progress", "completed"]
    plain = post(sb).json()  # none given: none echoed
    assert "client_business_id" not in plain
    assert "client_business_id" not in get_task(sb, plain["id"]).json()
    assert sb.task(plain["id"]).business_id is None


def test_get_by_an_unknown_business_id_is_404(sb: Sandbox) -> None:
    post(sb, {**BODY, "client_business_id": BID})
    answer = get_task(sb, BID + "x")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "task_not_found"
    counts = sb.request_counts
    assert counts[f"GET {GENERATIONS}/{{id}}"] == 1  # counted as a task GET


def test_business_id_in_metadata_names_the_task_too(sb: Sandbox) -> None:
    task_id = post(sb, {**BODY, "metadata": {"client_business_id": BID}}).json()["id"]
    assert get_task(sb, BID).json()["id"] == task_id
    assert [t.id for t in sb.tasks_with_business_id(BID)] == [task_id]


def test_a_reused_business_id_makes_a_second_task_and_names_the_newest(
    sb: Sandbox, clock: FakeClock
) -> None:
    """The service does not document refusing a second task with the same business id: the
    sandbox makes both, and a GET by it answers the most recent."""
    first = post(sb, {**BODY, "client_business_id": BID, "prompt": "[fail] first"}).json()
    clock.advance(1)
    second = post(sb, {**BODY, "client_business_id": BID, "prompt": "second"}).json()
    other = post(sb, {**BODY, "client_business_id": "other"}).json()
    post(sb)  # no business id: not counted
    assert first["id"] != second["id"]
    assert sb.tasks_created == 4
    assert [t.id for t in sb.tasks_with_business_id(BID)] == [first["id"], second["id"]]
    assert [t.id for t in sb.tasks_with_business_id("other")] == [other["id"]]
    assert sb.tasks_with_business_id("nobody") == []
    assert sb.business_id_counts() == {BID: 2, "other": 1}
    clock.advance(100)
    newest = get_task(sb, BID).json()
    assert (newest["id"], newest["status"]) == (second["id"], "completed")
    assert get_task(sb, first["id"]).json()["status"] == "failed"  # still there by its id
    assert balance(sb).json()["used_balance"] == 4.0  # both charged


def test_a_task_id_wins_over_a_business_id_spelled_the_same(sb: Sandbox) -> None:
    mine = post(sb).json()["id"]
    post(sb, {**BODY, "client_business_id": mine})  # someone's business id is that task id
    assert get_task(sb, mine).json()["id"] == mine


# -- lost answers ([lost], [lost-no-task]) -----------------------------------------------------


def post_lost(sb: Sandbox, body: dict[str, Any]) -> None:
    """POST over a raw connection; the connection must close without any answer."""
    host, port = sb.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("POST", GENERATIONS, body=json.dumps(body), headers=AUTH)
        with pytest.raises(http.client.RemoteDisconnected):
            conn.getresponse()  # no status line at all
    finally:
        conn.close()


def test_marker_lost_makes_the_task_and_loses_the_answer(sb: Sandbox, clock: FakeClock) -> None:
    body = {**BODY, "prompt": "a cat [lost]", "client_business_id": BID}
    post_lost(sb, body)
    assert sb.tasks_created == 1
    (task,) = sb.tasks_with_business_id(BID)
    assert task.prompt == "a cat [lost]"
    record = sb.log[-1]
    assert (record.status, record.fault, record.json) == (None, None, body)
    assert not sb.faults_injected  # a marker, not a fault
    found = get_task(sb, BID)
    assert found.status_code == 200
    assert (found.json()["id"], found.json()["client_business_id"]) == (task.id, BID)
    clock.advance(100)
    assert get_task(sb, BID).json()["status"] == "completed"  # a task like any other
    assert balance(sb).json()["used_balance"] == 1.0
    with pytest.raises(requests.ConnectionError):  # requests sees it as a client would
        post(sb, {**body, "prompt": "[LOST] again"})
    assert sb.business_id_counts() == {BID: 2}


def test_marker_lost_combines_with_the_others(sb: Sandbox, clock: FakeClock) -> None:
    post_lost(sb, {**BODY, "prompt": "[fail] [lost]", "client_business_id": BID})
    clock.advance(100)
    assert get_task(sb, BID).json()["status"] == "failed"


def test_marker_lost_no_task_makes_nothing(sb: Sandbox) -> None:
    body = {**BODY, "prompt": "a cat [lost-no-task]", "client_business_id": BID}
    post_lost(sb, body)
    assert sb.tasks_created == 0 and sb.tasks() == []
    assert sb.tasks_with_business_id(BID) == [] and not sb.business_id_counts()
    record = sb.log[-1]
    assert (record.status, record.fault, record.json) == (None, None, body)
    answer = get_task(sb, BID)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "task_not_found"
    assert balance(sb).json()["used_balance"] == 0.0
    with pytest.raises(requests.ConnectionError):
        post(sb, body)
    assert sb.tasks_created == 0


@pytest.mark.parametrize("marker", ["[lost]", "[lost-no-task]"])
def test_lost_markers_leave_refusals_answered(
    make: Callable[..., Sandbox], clock: FakeClock, marker: str
) -> None:
    """A request that makes no task gets its answer: the markers lose only a made task's."""
    sb = make(clock=clock.now, max_running=1)
    answer = post(sb, {**BODY, "prompt": f"{marker} x", "duration": 99})
    assert answer.status_code == 400
    assert post(sb).status_code == 200
    assert post(sb, {**BODY, "prompt": f"{marker} x"}).status_code == 429  # still running
    assert sb.tasks_created == 1


# -- balance -----------------------------------------------------------------------------------


def balance(
    sb: Sandbox, path: str = "/v1/balance", key: str | None = "test-key"
) -> requests.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return requests.get(sb.base_url + path, headers=headers, timeout=5)


def test_balance_grows_used_and_shrinks_remaining(sb: Sandbox) -> None:
    fresh = {
        "success": True,
        "remain_balance": 100.0,
        "used_balance": 0.0,
        "unlimited_quota": False,
    }
    assert balance(sb).json() == fresh
    assert balance(sb, "/balance").json() == fresh
    assert post(sb).status_code == 200  # std, 5 s: 1
    assert balance(sb).json() == {**fresh, "remain_balance": 99.0, "used_balance": 1.0}
    for body in (
        {**BODY, "mode": "pro"},  # 1.5
        {**BODY, "duration": 10},  # 2
        {**BODY, "mode": "pro", "duration": 10},  # 3
        {**BODY, "video_list": [{"video_url": VID}]},  # 1.5: billed as Video
        {**BODY, "audio": True},  # 1.25: billed as Sound
        {**BODY, "audio": False},  # 1
    ):
        assert post(sb, body).status_code == 200, body
    assert post(sb, {**BODY, "mode": "turbo"}).status_code == 400  # refused: costs nothing
    spent = 1 + 1.5 + 2 + 3 + 1.5 + 1.25 + 1
    expected = {**fresh, "remain_balance": 100 - spent, "used_balance": spent}
    assert balance(sb).json() == expected
    assert balance(sb, "/balance").json() == expected


def test_balance_may_go_below_zero_without_refusing_tasks(
    make: Callable[..., Sandbox], clock: FakeClock
) -> None:
    sb = make(clock=clock.now, balance=1.5)
    assert [post(sb).status_code for _ in range(3)] == [200, 200, 200]
    assert balance(sb).json()["remain_balance"] == -1.5
    assert balance(sb).json()["used_balance"] == 3.0


def test_balance_unlimited(make: Callable[..., Sandbox], clock: FakeClock) -> None:
    sb = make(clock=clock.now, unlimited=True)
    post(sb, {**BODY, "duration": 10})
    answer = {"success": True, "remain_balance": -1, "used_balance": 2.0, "unlimited_quota": True}
    assert balance(sb).json() == answer
    assert balance(sb, "/balance").json() == answer


def test_balance_of_an_unknown_key(make: Callable[..., Sandbox], clock: FakeClock) -> None:
    sb = make(clock=clock.now, unknown_keys={"who-is-this"})
    for path in ("/v1/balance", "/balance"):
        answer = balance(sb, path, key="who-is-this")
        assert answer.status_code == 200
        assert answer.json() == {
            "success": False,
            "message": "Failed to get token info: record not found",
        }
        assert balance(sb, path).json()["success"] is True  # another key is known
    assert post(sb, headers={"Authorization": "Bearer who-is-this"}).status_code == 200


def test_revoked_key_gets_401_everywhere(make: Callable[..., Sandbox], clock: FakeClock) -> None:
    sb = make(clock=clock.now, revoked_keys="gone-key", faults=1.0, fault_kinds=[fk.RATE_LIMIT])
    gone = {"Authorization": "Bearer gone-key"}
    answers = [
        balance(sb, key="gone-key"),
        balance(sb, "/balance", key="gone-key"),
        post(sb, headers=gone),
        requests.get(f"{sb.base_url}{GENERATIONS}/video_X", headers=gone, timeout=5),
        requests.post(sb.base_url + UPLOADS, headers=gone, files={"file": tiny_png()}, timeout=5),
    ]
    assert [a.status_code for a in answers] == [401] * 5
    assert answers[0].json()["error"]["code"] == "invalid_api_key"
    assert sb.tasks_created == 0 and not sb.faults_injected  # refused before any fault
    sb.config.faults = 0.0
    assert balance(sb).status_code == 200  # other keys are served
    sb.config.revoked_keys.add("test-key")  # read live
    assert balance(sb).status_code == 401


def test_balance_needs_a_key_and_a_get(sb: Sandbox) -> None:
    for path in ("/v1/balance", "/balance"):
        answer = balance(sb, path, key=None)
        assert answer.status_code == 401
        assert answer.json()["error"]["message"] == "Invalid or missing API key"
        wrong = requests.post(sb.base_url + path, headers=AUTH, timeout=5)
        assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"


# -- max_running -------------------------------------------------------------------------------


def test_max_running_answers_1303(make: Callable[..., Sandbox], clock: FakeClock) -> None:
    sb = make(clock=clock.now, max_running=1, queue_seconds=1, run_seconds=1)
    assert post(sb).status_code == 200
    answer = post(sb)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.json() == {
        "error": {
            "code": 1303,
            "message": "parallel task over resource pack limit",
            "type": "rate_limit_error",
        }
    }
    assert sb.tasks_created == 1
    clock.sleep(5)  # the first one is final now
    assert post(sb).status_code == 200
    assert sb.tasks_created == 2


# -- uploads -----------------------------------------------------------------------------------


def test_upload_png_and_serve_it_back(sb: Sandbox) -> None:
    png = tiny_png()
    answer = requests.post(
        sb.base_url + UPLOADS,
        headers=AUTH,
        files={"file": ("dot.png", png, "image/png")},
        data={"purpose": "generation"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["success"] is True and doc["message"] == ""
    data = doc["data"]
    assert re.fullmatch(r"upload_[0-9a-f]{8}", data["id"])
    assert data["url"] == f"{sb.file_base_url}/uploads/{data['id']}.png"
    assert (data["mime_type"], data["size"]) == ("image/png", len(png))

    served = requests.get(data["url"], timeout=5)
    assert served.status_code == 200
    assert served.content == png
    assert served.headers["Content-Type"] == "image/png"
    assert sb.log[-1].listener == "files" and not sb.log[-1].has_auth
    assert requests.get(data["url"] + ".jpg", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("head", "ext", "mime"),
    [
        (b"\xff\xd8\xff\xe0rest", "jpg", "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp", "image/webp"),
        (b"GIF89a\x01\x00", "gif", "image/gif"),
    ],
)
def test_upload_sniffs_the_type(sb: Sandbox, head: bytes, ext: str, mime: str) -> None:
    # The declared name and type are wrong on purpose: the magic bytes decide.
    files = {"file": ("x.bin", head, "application/octet-stream")}
    answer = requests.post(sb.base_url + UPLOADS, headers=AUTH, files=files, timeout=5)
    data = answer.json()["data"]
    assert data["url"].endswith("." + ext) and data["mime_type"] == mime


@pytest.mark.parametrize(
    ("files", "data", "message"),
    [
        ({"file": ("a.txt", b"hello", "text/plain")}, None, "Bad Request: unsupported file type"),
        ({"purpose": (None, "generation")}, None, "Bad Request: file is required"),
        (None, {"purpose": "generation"}, "Bad Request: file is required"),  # not multipart
        (
            {"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024), "image/png")},
            None,
            "File Too Large",
        ),
    ],
)
def test_upload_errors(sb: Sandbox, files: Any, data: Any, message: str) -> None:
    answer = requests.post(sb.base_url + UPLOADS, headers=AUTH, files=files, data=data, timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"success": False, "message": message}


def test_upload_needs_multipart(sb: Sandbox) -> None:
    answer = requests.post(sb.base_url + UPLOADS, headers=AUTH, data=tiny_png(), timeout=5)
    assert answer.status_code == 400 and answer.json()["success"] is False


def test_parse_multipart_keeps_binary_data() -> None:
    payload = b"\r\n--not-it\r\n\x00\xff\r\n\r\n"
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="purpose"\r\n\r\ngeneration\r\n--XyZ--\r\n'
    )
    parts = parse_multipart('multipart/form-data; boundary="XyZ"', body)
    assert parts is not None
    assert [(p.name, p.filename, p.data) for p in parts] == [
        ("file", "a b.png", payload),
        ("purpose", None, b"generation"),
    ]
    assert parse_multipart("application/json", body) is None


# -- the video host: ranges, HEAD, no key ------------------------------------------------------


def test_range_requests_and_head(sb: Sandbox, clock: FakeClock) -> None:
    view = finished(sb, clock, BODY)
    url = view["result"]["data"][0]["url"]
    clip = sb.clip_bytes()
    size = len(clip)

    def fetch(range_header: str) -> requests.Response:
        return requests.get(url, headers={"Range": range_header}, timeout=5)

    part = fetch("bytes=0-99")
    assert part.status_code == 206
    assert part.content == clip[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{size}"
    assert part.headers["Content-Length"] == "100"
    tail = fetch("bytes=1000-")
    assert (tail.status_code, tail.content) == (206, clip[1000:])
    assert tail.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
    assert fetch("bytes=-50").content == clip[-50:]
    assert fetch(f"bytes=10-{size + 500}").content == clip[10:]
    unsatisfiable = fetch(f"bytes={size}-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{size}"
    assert fetch("bytes=0-1,5-6").status_code == 200  # several ranges: ignored, the whole file

    head = requests.head(url, timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(size)
    assert head.headers["Content-Type"] == "video/mp4"


def test_log_redacts_the_key_and_shows_its_absence_on_the_file_host(
    sb: Sandbox, clock: FakeClock
) -> None:
    view = finished(sb, clock, {**BODY, "extra": 1})
    requests.get(view["result"]["data"][0]["url"], timeout=5)
    post_record, get_record, file_record = sb.log
    assert post_record.listener == "api" and post_record.method == "POST"
    assert post_record.path == GENERATIONS
    assert post_record.headers["Authorization"] == "<redacted>" and post_record.has_auth
    assert "test-key" not in repr(sb.log)
    assert post_record.json == {**BODY, "extra": 1}
    assert post_record.status == 200 and post_record.fault is None
    assert get_record.status == 200 and get_record.body == b"" and get_record.json is None
    assert file_record.listener == "files"
    assert "Authorization" not in file_record.headers and not file_record.has_auth
    assert file_record.status == 200


def test_keep_alive_and_stop_with_an_idle_connection(make: Callable[..., Sandbox]) -> None:
    sb = make()
    host, port = sb.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    for _ in range(3):  # three requests on one connection
        conn.request("GET", GENERATIONS + "/video_X", headers=AUTH)
        answer = conn.getresponse()
        assert answer.status == 404 and answer.getheader("Content-Length")
        answer.read()
    started = time.monotonic()
    sb.stop()  # the connection is still open: stop must not wait for the client
    assert time.monotonic() - started < 4  # the client's timeout is 5 s (slack for a busy CI)
    conn.close()


def test_run_serves_until_stopped_or_interrupted(capfd: pytest.CaptureFixture[str]) -> None:
    urls: list[str] = []

    def ready(sandbox: Sandbox) -> None:
        urls.append(sandbox.base_url)
        assert sandbox.log.size == FOREGROUND_LOG_SIZE  # the foreground's is never read
        assert requests.get(sandbox.base_url + "/v1/x", timeout=5).status_code == 401
        threading.Timer(0.1, sandbox.stop).start()

    run("127.0.0.1", 0, SandboxConfig(), on_ready=ready)
    assert urls

    def interrupt(sandbox: Sandbox) -> None:
        raise KeyboardInterrupt

    sb = Sandbox()
    assert sb.log.size == LOG_SIZE  # a test's sandbox keeps plenty
    sb.serve_forever(interrupt)  # returns, sockets closed
    with pytest.raises(requests.ConnectionError):
        requests.get(sb.base_url + "/v1/x", timeout=2)
    assert capfd.readouterr().err == ""


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        SandboxConfig(faults=1.5)
    with pytest.raises(ValueError, match="balance"):
        SandboxConfig(balance=float("nan"))
    assert SandboxConfig(unknown_keys="k").unknown_keys == {"k"}  # one key, not its letters
    with pytest.raises(ValueError, match="nope"):
        SandboxConfig(fault_kinds=["nope"])
    assert SandboxConfig(fault_kinds=iter(["slow"])).fault_kinds == ("slow",)
    for size in (-1, 1.5, True):
        with pytest.raises(ValueError, match="log_size"):
            SandboxConfig(log_size=size)  # type: ignore[arg-type]
    for latency in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="latency"):
            SandboxConfig(latency=latency)


def test_default_pace_is_the_in_process_one() -> None:
    config = SandboxConfig()
    assert (config.queue_seconds, config.run_seconds) == IN_PROCESS
    assert SandboxConfig(**QUICK._asdict()).run_seconds == QUICK.run_seconds


# -- the request log ---------------------------------------------------------------------------


def test_a_long_run_keeps_a_bounded_log_and_exact_counts(make: Callable[..., Sandbox]) -> None:
    sb = make(log_size=50)
    host, port = sb.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    ids = []
    for n in range(1500):  # cheap requests on one keep-alive connection
        if n % 100 == 0:
            conn.request("POST", GENERATIONS, body=json.dumps(BODY), headers=AUTH)
            ids.append(json_of(conn.getresponse())["id"])
        else:
            conn.request("GET", f"{GENERATIONS}/{ids[-1]}", headers=AUTH)
            assert conn.getresponse().read()
    conn.request("GET", "/v1/balance", headers=AUTH)
    conn.getresponse().read()
    conn.request("GET", "/nowhere", headers=AUTH)
    conn.getresponse().read()
    conn.close()
    assert len(sb.log) == 50 and len(list(sb.log)) == 50  # the oldest went
    assert (sb.log[-2].path, sb.log[-1].path) == ("/v1/balance", "/nowhere")
    assert sb.log[-3].path == f"{GENERATIONS}/{ids[-1]}" and sb.log[-50:] == list(sb.log)
    assert sb.tasks_created == len(ids) == 15
    assert sb.request_counts == {
        f"POST {GENERATIONS}": 15,
        f"GET {GENERATIONS}/{{id}}": 1485,
        "GET /v1/balance": 1,
        "GET (no such endpoint)": 1,
    }
    assert sb.request_counts.total() == 1502
    sb.log.clear()  # a test's fresh start: the counts stay
    assert sb.log == [] and sb.request_counts.total() == 1502


def test_request_counts_name_the_file_host_and_faults(
    make: Callable[..., Sandbox], clock: FakeClock
) -> None:
    sb = make(clock=clock.now)
    view = finished(sb, clock, BODY)
    requests.head(view["result"]["data"][0]["url"], timeout=5)
    sb.config.faults, sb.config.fault_kinds = 1.0, [fk.DROP_BEFORE]
    with pytest.raises(requests.ConnectionError):
        post(sb)
    assert sb.request_counts == {
        f"POST {GENERATIONS}": 2,  # a dropped request counts too
        f"GET {GENERATIONS}/{{id}}": 1,
        "HEAD /videos/{id}.mp4": 1,
    }
    assert len(sb.log) == 4 and sb.tasks_created == 1


def json_of(answer: http.client.HTTPResponse) -> Any:
    return json.loads(answer.read())


# -- faults ------------------------------------------------------------------------------------


def only(make: Callable[..., Sandbox], kind: str, **config: Any) -> Sandbox:
    return make(faults=1.0, fault_kinds=[kind], seed=1, **config)


def test_fault_rate_limit(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.RATE_LIMIT)
    answer = post(sb)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert "error" in answer.json()
    assert sb.tasks_created == 0
    assert sb.faults_injected == {fk.RATE_LIMIT: 1}
    assert (sb.log[-1].status, sb.log[-1].fault) == (429, fk.RATE_LIMIT)


def test_fault_server_error_json(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.SERVER_ERROR_JSON)
    statuses = set()
    for _ in range(8):
        answer = post(sb)
        assert answer.json()["error"]["type"] == "server_error"
        statuses.add(answer.status_code)
    assert statuses <= {500, 503} and statuses
    assert sb.tasks_created == 0


def test_fault_bad_gateway_html(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.BAD_GATEWAY_HTML)
    for answer in (post(sb), requests.get(sb.file_base_url + "/videos/x.mp4", timeout=5)):
        assert answer.status_code == 502
        assert answer.headers["Content-Type"] == "text/html"
        assert "<title>502 Bad Gateway</title>" in answer.text and "nginx" in answer.text
    assert sb.tasks_created == 0


def test_fault_drop_before_creates_nothing(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.DROP_BEFORE)
    with pytest.raises(requests.ConnectionError):
        post(sb)
    assert sb.tasks_created == 0
    assert (sb.log[-1].status, sb.log[-1].fault) == (None, fk.DROP_BEFORE)


def test_fault_drop_after_creates_the_task(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.DROP_AFTER)
    with pytest.raises(requests.ConnectionError):
        post(sb, {**BODY, "client_business_id": "order-1"})
    assert sb.tasks_created == 1
    assert (sb.log[-1].status, sb.log[-1].fault) == (None, fk.DROP_AFTER)
    assert sb.faults_injected[fk.DROP_AFTER] == 1
    sb.config.faults = 0.0
    found = get_task(sb, "order-1")  # the lost answer's task, found by its business id
    assert found.status_code == 200
    assert found.json()["id"] == sb.tasks()[0].id


def test_fault_drop_before_leaves_no_task_by_business_id(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.DROP_BEFORE)
    with pytest.raises(requests.ConnectionError):
        post(sb, {**BODY, "client_business_id": "order-1"})
    sb.config.faults = 0.0
    assert get_task(sb, "order-1").status_code == 404
    assert not sb.business_id_counts()


def test_fault_slow(make: Callable[..., Sandbox]) -> None:
    sb = only(make, fk.SLOW)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        post(sb, timeout=(2, 0.3))
    assert time.monotonic() - started < 1.5
    assert sb.tasks_created == 1  # processed, only late


def test_latency_delays_every_answer_and_stop_cuts_it_short(
    make: Callable[..., Sandbox],
) -> None:
    sb = make(latency=0.3)
    started = time.monotonic()
    assert post(sb).status_code == 200
    task_id = sb.tasks()[0].id
    assert get_task(sb, task_id).status_code == 200
    assert time.monotonic() - started >= 0.6  # two answers, each at least 0.3 s late
    sb.config.latency = 30.0  # read live; stop() ends the wait, as it does a slow fault's
    threading.Timer(0.2, sb.stop).start()
    started = time.monotonic()
    with contextlib.suppress(requests.RequestException):
        get_task(sb, task_id)
    assert time.monotonic() - started < 10


def test_fault_truncated_body_only_on_downloads(
    make: Callable[..., Sandbox], clock: FakeClock
) -> None:
    sb = only(make, fk.TRUNCATED_BODY, clock=clock.now)
    view = finished(sb, clock, BODY)  # API requests: no other kind enabled, so no fault
    assert view["status"] == "completed" and not sb.faults_injected
    host, port = sb.file_base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", f"/videos/{view['id']}.mp4")
    answer = conn.getresponse()
    size = len(sb.clip_bytes())
    assert answer.status == 200 and answer.getheader("Content-Length") == str(size)
    with pytest.raises(http.client.IncompleteRead) as cut:
        answer.read()
    assert 0 < len(cut.value.partial) < size
    assert cut.value.partial == sb.clip_bytes()[: len(cut.value.partial)]
    conn.close()
    assert sb.faults_injected == {fk.TRUNCATED_BODY: 1}


def test_config_is_read_live(make: Callable[..., Sandbox], clock: FakeClock) -> None:
    sb = make(clock=clock.now)
    assert post(sb).status_code == 200
    sb.config.faults = 1.0
    sb.config.fault_kinds = [fk.RATE_LIMIT]
    assert post(sb).status_code == 429
    sb.config.faults = 0.0
    sb.config.max_running = 1
    assert post(sb).json()["error"]["code"] == 1303
    sb.config.faults = 7.0  # nonsense: said so, in a 500
    assert "bad config" in post(sb).json()["error"]["message"]
    assert sb.tasks_created == 1


def test_faults_are_reproducible_with_a_seed(make: Callable[..., Sandbox]) -> None:
    kinds = [fk.RATE_LIMIT, fk.SERVER_ERROR_JSON, fk.BAD_GATEWAY_HTML]

    def statuses() -> list[int]:
        sb = make(faults=0.5, fault_kinds=kinds, seed=42)
        with requests.Session() as session:
            return [
                session.get(f"{sb.base_url}{GENERATIONS}/x", headers=AUTH).status_code
                for _ in range(30)
            ]

    first = statuses()
    assert first == statuses()
    assert 404 in first and {429, 502} & set(first)


def test_fault_stderr_stays_clean(
    make: Callable[..., Sandbox], capfd: pytest.CaptureFixture[str]
) -> None:
    sb = make(faults=1.0, fault_kinds=[fk.DROP_BEFORE, fk.DROP_AFTER], seed=3)
    for _ in range(4):
        with pytest.raises(requests.ConnectionError):
            post(sb)
    host, port = sb.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")  # no such method
        assert raw.recv(1000).startswith(b"HTTP/1.1 501")
    assert capfd.readouterr().err == ""
