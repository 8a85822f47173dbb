"""The newest revision of the service (API.md 1c, CLI.md "The newest revision of the service"),
through the CLI entry point against the sandbox: each option reaches the body as the page
says, and each limit is exit 2 with nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.test_omni import posts, sent

A, B = "https://img.example/a.png", "https://img.example/b.png"
CLIP = "https://media.example/dance.mp4"


@pytest.mark.parametrize("seconds", [3, 7, 12, 15])
def test_every_whole_second_from_3_to_15(kling, against, seconds: int) -> None:
    body = sent(kling, against, "a fox", "--duration", str(seconds))
    assert body["duration"] == seconds and isinstance(body["duration"], int)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--duration", "2"], "kling-v3-omni takes 3 to 15 seconds"),
        (["--duration", "16"], "kling-v3-omni takes 3 to 15 seconds"),
        (["--duration", "11", "--model", "kling-video-o1"], "kling-video-o1 takes 3 to 10"),
        (["--duration", "7", "--model", "kling-v2-6"], "kling-v2-6 takes 5 or 10 seconds"),
        (["--video", CLIP, "--video", CLIP], "the service takes one reference video"),
        ([arg for n in range(8) for arg in ("--ref", A)], "8 images and elements"),
        (["--video", CLIP, *(a for n in range(5) for a in ("--ref", A))], "at most 4 beside"),
        (["--ref", A, *(a for n in range(7) for a in ("--element", str(n + 1)))], "at most 7"),
        (["--business-id", "no spaces please"], "--business-id must be 1 to 64"),
        (["--business-id", "x" * 65], "--business-id must be 1 to 64"),
        (["--business-id", ".."], "not only dots"),
        (["--element", "0"], "element id 0 is out of range"),
        (["--element", "1" * 23], "out of range"),
        (["--set", "client_business_id=b1", "--business-id", "b2"], "give it one way"),
    ],
)
def test_limits_and_bad_values_exit_2_and_send_nothing(
    kling, against, args: list[str], words: str
) -> None:
    result = kling("generate", "a fox", *args, "-q")
    assert result.exit_code == 2 and words in result.stderr, result.stderr
    assert posts(against) == []


def test_a_duration_out_of_range_names_the_setting_it_came_from(
    kling, against, tmp_path: Path
) -> None:
    """`config set duration 99` (a whole number: the model is known only with the request),
    then every generate blamed `--duration 99`, an option nobody gave; batch named `duration`
    for a line without one."""
    assert kling("config", "set", "duration", "99").exit_code == 0
    result = kling("generate", "a fox", "-q")
    assert result.exit_code == 2
    assert "error: duration 99 (from the config file): kling-v3-omni takes" in result.stderr
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"prompt": "a fox"}\n{"prompt": "a cat", "duration": 99}\n')
    batch = kling("batch", str(lines)).stderr
    assert "line 1: duration 99 (from the config file): " in batch
    assert "line 2: `duration` 99: " in batch  # the line's own key
    from_env = kling("generate", "a fox", "-q", env={"KLING_DURATION": "42"})
    assert "error: duration 42 (from KLING_DURATION): " in from_env.stderr
    given = kling("generate", "a fox", "-q", "--duration", "77")
    assert "error: --duration 77: " in given.stderr
    assert posts(against) == []


def test_a_prompt_over_2500_characters_is_refused(kling, against) -> None:
    assert kling("generate", "x" * 2500, "-q").exit_code == 0
    result = kling("generate", "x" * 2501, "-q")
    assert result.exit_code == 2 and "at most 2,500" in result.stderr
    assert len(posts(against)) == 1


def test_a_model_kling_does_not_know_takes_any_whole_number(kling, against) -> None:
    body = sent(kling, against, "a fox", "--model", "future-model", "--duration", "42")
    assert (body["model"], body["duration"]) == ("future-model", 42)


def test_elements_by_url_path_and_id_with_roles(kling, against, tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    face.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    body = sent(
        kling, against, "<<<element_1>>>, <<<element_2>>>, <<<element_3>>>, <<<element_4>>>",
        "--element", A, "--element", "subject=https://v.example/walk.MOV?x=1",
        "--element", f"hero={face}", "--element", "42",
    )  # fmt: skip
    (upload,) = [r for r in against.log if r.path.endswith("/uploads/images")]
    first, walk, hero, library = body["metadata"]["element_list"]
    assert first == {"url": A, "type": "image"}
    assert walk == {"url": "https://v.example/walk.MOV?x=1", "type": "video", "role": "subject"}
    assert hero["role"] == "hero" and hero["type"] == "image" and hero["url"].startswith("http")
    assert library == {"element_id": 42}
    assert upload.method == "POST"


def test_a_urls_own_equals_sign_is_no_role(kling, against) -> None:
    url = "https://img.example/a.png?size=large"
    body = sent(kling, against, "<<<element_1>>>", "--element", url)
    assert body["metadata"]["element_list"] == [{"url": url, "type": "image"}]


@pytest.mark.parametrize(("flag", "value"), [("--watermark", True), ("--no-watermark", False)])
def test_watermark(kling, against, flag: str, value: bool) -> None:
    assert sent(kling, against, "a fox", flag)["metadata"] == {"watermark": value}


def test_no_watermark_key_unless_asked(kling, against) -> None:
    assert "metadata" not in sent(kling, against, "a fox")


def test_a_business_id_given_is_sent_and_shown(kling, against) -> None:
    result = kling("generate", "a fox", "--business-id", "order-2026.7", "--json")
    assert result.exit_code == 0
    assert posts(against)[0].json["client_business_id"] == "order-2026.7"
    assert json.loads(result.stdout)["client_business_id"] == "order-2026.7"  # echoed


def test_each_send_has_a_business_id_of_its_own(kling, against) -> None:
    for _ in range(3):
        assert kling("generate", "a fox", "-q").exit_code == 0
    made = [post.json["client_business_id"] for post in posts(against)]
    assert len(set(made)) == 3


def test_batch_keys_of_the_newest_revision(kling, against, tmp_path: Path) -> None:
    lines = tmp_path / "new.jsonl"
    lines.write_text(
        json.dumps({
            "prompt": "<<<element_1>>> and <<<element_2>>> and <<<element_3>>>",
            "duration": 12, "watermark": True, "business_id": "line-1",
            "elements": [A, 7, {"element_id": 9}],
        }) + "\n"
    )  # fmt: skip
    result = kling("batch", str(lines), "-o", str(tmp_path / "out"), "--interval", "0.1")
    assert result.exit_code == 0, result.stderr
    (body,) = [post.json for post in posts(against)]
    assert (body["duration"], body["client_business_id"]) == (12, "line-1")
    assert body["metadata"] == {
        "element_list": [{"url": A, "type": "image"}, {"element_id": 7}, {"element_id": 9}],
        "watermark": True,
    }
