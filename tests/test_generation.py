"""The request body: every check made before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_cli import generation
from kling_cli.errors import UsageError


def body(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        model="kling-v3-omni", prompt="a cat", mode="std", duration=5, aspect_ratio="16:9",
        image_urls=[], metadata={}, extra={},
    )  # fmt: skip
    args.update(kw)
    return generation.build_body(**args)


def test_defaults_make_a_minimal_body() -> None:
    assert body() == {
        "model": "kling-v3-omni", "prompt": "a cat", "mode": "std", "duration": 5,
        "aspect_ratio": "16:9",
    }  # fmt: skip


def test_duration_is_a_json_number() -> None:
    assert body(duration=10)["duration"] == 10
    with pytest.raises(UsageError):
        body(extra={"duration": "10"})


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "ultra"},
        {"duration": 7},
        {"aspect_ratio": "4:3"},
        {"prompt": "   "},
        {"prompt": "<<<image_1>>> waves"},
        {"prompt": "<<<image_2>>>", "image_urls": ["https://x/a.png"]},
        {"image_urls": ["data:image/png;base64,AAAA"]},
        {"extra": {"audio": True, "video_list": []}},
        {"metadata": {}, "extra": {"metadata": "x"}},
    ],
)
def test_invalid_bodies_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        body(**kw)


def test_extra_fields_pass_through() -> None:
    b = body(extra={"audio": True, "seed": 3}, metadata={"image_list": []})
    assert b["audio"] is True and b["seed"] == 3 and b["metadata"] == {"image_list": []}


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=6), st.integers(0, 10))
def test_prompt_reference_check(refs: list[int], count: int) -> None:
    prompt = " ".join(f"<<<image_{n}>>>" for n in refs) or "plain"
    valid = all(1 <= n <= count for n in refs)
    if valid:
        generation.check_image_refs(prompt, count)
    else:
        with pytest.raises(UsageError):
            generation.check_image_refs(prompt, count)


@given(st.text(min_size=1).filter(lambda k: "=" not in k and k.strip()), st.text())
def test_assignment_value_is_json_or_string(key: str, raw: str) -> None:
    k, value = generation.parse_assignment(f"{key}={raw}", "--set")
    assert k == key.strip()
    import json

    try:
        assert value == json.loads(raw) or value != value  # NaN
    except ValueError:
        assert value == raw


@pytest.mark.parametrize("text", ["novalue", "=x", ""])
def test_assignment_needs_key_and_equals(text: str) -> None:
    with pytest.raises(UsageError):
        generation.parse_assignment(text, "--set")


def test_images_classified(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert generation.classify_image("https://x/a.png") == ("url", "https://x/a.png")
    assert generation.classify_image(str(png)) == ("file", png)
    for bad in ["data:image/png;base64,AA", "ftp://x/a.png", str(tmp_path / "missing.png")]:
        with pytest.raises(UsageError):
            generation.classify_image(bad)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"0" * (10 * 1024 * 1024))
    with pytest.raises(UsageError, match="10 MB"):
        generation.classify_image(str(big))
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(UsageError, match="JPEG, PNG"):
        generation.classify_image(str(txt))
