"""The official Omni references (CLI.md), through the CLI entry point against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox

A, B = "https://img.example/a.png", "https://img.example/b.png"
CLIP = "https://media.example/dance.mp4"


def posts(sandbox: Sandbox) -> list:
    return [r for r in sandbox.log if r.method == "POST" and r.path.endswith("/videos/generations")]


def sent(kling, sandbox: Sandbox, *args: str) -> dict:
    """Run `generate ARGS -q`; the one body the sandbox received."""
    result = kling("generate", *args, "-q")
    assert result.exit_code == 0, result.stderr
    (post,) = posts(sandbox)
    return post.json


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "me.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return path


# --- every row of the table ----------------------------------------------------------------------


def test_ref_images_into_the_image_list(kling, against) -> None:
    body = sent(kling, against, "<<<image_1>>> and <<<image_2>>>", "--ref", A, "--ref", B)
    assert body["metadata"] == {"image_list": [{"image_url": A}, {"image_url": B}]}
    assert "image_urls" not in body
    assert body["prompt"] == "<<<image_1>>> and <<<image_2>>>"  # nothing prepended


def test_first_and_end_frame_around_the_refs_local_files_uploaded(kling, against, png) -> None:
    body = sent(
        kling, against, "<<<image_1>>> turns to <<<image_3>>>, <<<image_2>>> watching",
        "--end-frame", B, "--ref", str(png), "--first-frame", str(png),
    )  # fmt: skip
    uploads = [r for r in against.log if r.path.endswith("/uploads/images")]
    assert len(uploads) == 1  # the same file once
    uploaded = [e["image_url"] for e in body["metadata"]["image_list"]]
    assert [e.get("type") for e in body["metadata"]["image_list"]] == [
        "first_frame",
        None,
        "end_frame",
    ]
    assert uploaded[0] == uploaded[1] and uploaded[0].startswith("http") and uploaded[2] == B


def test_reference_video_with_its_options(kling, against) -> None:
    body = sent(kling, against, "edit <<<video_1>>>", "--video", CLIP)
    assert body["video_list"] == [  # base: the service's own default (API.md 1c)
        {"video_url": CLIP, "refer_type": "base", "keep_original_sound": "no"}
    ]
    against.log.clear()
    body = sent(
        kling, against, "like <<<video_1>>>", "--video", CLIP, "--video-refer", "feature",
        "--keep-sound",
    )  # fmt: skip
    assert body["video_list"] == [
        {"video_url": CLIP, "refer_type": "feature", "keep_original_sound": "yes"}
    ]


def test_elements_and_audio(kling, against) -> None:
    body = sent(kling, against, "<<<element_1>>> meets <<<element_2>>>", "--element", "7",
                "--element", "12", "--audio")  # fmt: skip
    assert body["metadata"] == {"element_list": [{"element_id": 7}, {"element_id": 12}]}
    assert body["audio"] is True
    against.log.clear()
    assert sent(kling, against, "quiet", "--no-audio")["audio"] is False
    against.log.clear()
    assert "audio" not in sent(kling, against, "unsaid")


def test_dry_run_prints_exactly_what_would_be_sent(kling, against) -> None:
    args = ("<<<image_1>>> dances like <<<video_1>>>", "--ref", A, "--video", CLIP)
    dry = kling("generate", *args, "--dry-run")
    assert dry.exit_code == 0 and posts(against) == []
    shown, body = json.loads(dry.stdout), sent(kling, against, *args)
    # Each send has a business id of its own: the dry run shows one, the send made another.
    assert shown.pop("client_business_id") != body.pop("client_business_id")
    assert shown == body


def test_a_ref_the_prompt_never_names_is_warned_about_and_still_sent(kling, against) -> None:
    result = kling("generate", "<<<image_2>>> smiles", "--ref", A, "--ref", B, "-q")
    assert result.exit_code == 0
    assert "warning: reference image 1" in result.stderr and A in result.stderr
    assert "image 2" not in result.stderr
    assert len(posts(against)) == 1


# --- every conflict: exit 2, nothing received ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", A, "--ref", B], "-i/--image cannot be used with --ref"),
        (["-i", A, "--first-frame", B], "cannot be used with"),
        (["-i", A, "--end-frame", B, "--first-frame", A], "cannot be used with"),
        (["--end-frame", B], "--end-frame needs --first-frame"),
        (["--audio", "--video", CLIP], "--audio cannot be used with a reference video"),
        (["--audio", "--set", f'video_list=[{{"video_url": "{CLIP}"}}]'], "audio and video_list"),
        (["--video-refer", "base"], "apply to reference videos"),
        (["--keep-sound"], "apply to reference videos"),
        (["--video", "clip.mp4"], "must be a public http(s) URL"),
        (["--video", CLIP, "--video-refer", "motion"], "--video-refer must be one of"),
        (["--element", "x"], "image file x does not exist"),
        (["--set", "metadata={}", "--ref", A], "would replace --metadata"),
        (["--metadata", f'image_list=[{{"image_url": "{A}"}}]', "--ref", B], "one way"),
        (["--set", "prompt=other"], "would replace the prompt"),
    ],
)
def test_conflicts_exit_2_and_send_nothing(kling, against, args, message) -> None:
    result = kling("generate", "a fox", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert against.log == []


@pytest.mark.parametrize(
    ("prompt", "args", "message"),
    [
        ("<<<image_2>>>", ["--ref", A], "<<<image_2>>>, but there is only 1 image"),
        ("<<<image_3>>>", ["--first-frame", A, "--end-frame", B], "only 2 images"),
        ("<<<video_1>>>", [], "<<<video_1>>>, but there are no videos"),
        ("<<<video_2>>>", ["--set", f'video_list=[{{"video_url": "{CLIP}"}}]'], "only 1 video"),
        ("<<<element_1>>>", ["--ref", A], "no elements"),
        ("<<<element_2>>>", ["--metadata", 'element_list=[{"element_id": 1}]'], "only 1 element"),
        ("<<<image_0>>>", ["--ref", A], "numbered from 1"),
    ],
)
def test_a_placeholder_beyond_its_list_exits_2(kling, against, prompt, args, message) -> None:
    result = kling("generate", prompt, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert against.log == []


def test_a_local_video_says_why_it_cannot_be_sent(kling, against, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    result = kling("generate", "like <<<video_1>>>", "--video", str(clip))
    assert result.exit_code == 2
    assert "upload takes images only" in result.stderr and against.log == []


# --- batch lines take the same keys --------------------------------------------------------------


def test_batch_lines_take_the_omni_keys(kling, against, tmp_path: Path, png: Path) -> None:
    rows = [
        {"prompt": "<<<image_1>>> to <<<image_3>>> with <<<image_2>>>", "first_frame": "me.png",
         "refs": [A], "end_frame": B},
        {"prompt": "like <<<video_1>>>", "videos": [CLIP], "video_refer": "base",
         "keep_sound": True},
        {"prompt": "<<<element_1>>> sings", "elements": [5], "audio": True},
    ]  # fmt: skip
    (tmp_path / "me.png").write_bytes(png.read_bytes())
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = kling("--no-progress", "batch", str(jobs), "--interval", "0.1")
    assert result.exit_code == 0, result.stderr
    bodies = sorted((p.json for p in posts(against)), key=lambda b: b["prompt"])
    element, frames, video = bodies  # by prompt: "<<<e", "<<<i", "like"
    assert [e.get("type") for e in frames["metadata"]["image_list"]] == [
        "first_frame",
        None,
        "end_frame",
    ]
    assert frames["metadata"]["image_list"][0]["image_url"].startswith("http")
    assert video["video_list"] == [
        {"video_url": CLIP, "refer_type": "base", "keep_original_sound": "yes"}
    ]
    assert element["metadata"] == {"element_list": [{"element_id": 5}]} and element["audio"]


def test_bad_omni_lines_are_all_reported_with_their_keys(kling, against, tmp_path: Path) -> None:
    rows = [
        {"prompt": "x", "end_frame": B},
        {"prompt": "x", "audio": True, "videos": [CLIP]},
        {"prompt": "<<<video_1>>>"},
        {"prompt": "x", "videos": ["clip.mp4"]},
    ]
    jobs = tmp_path / "bad.jsonl"
    jobs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = kling("--no-progress", "batch", str(jobs))
    assert result.exit_code == 2
    for expected in (
        "line 1: `end_frame` needs `first_frame`",
        "line 2: `audio` cannot be used with a reference video",
        "line 3: the prompt refers to <<<video_1>>>",
        "line 4: video 'clip.mp4': a reference video must be a public http(s) URL",
    ):
        assert expected in result.stderr
    assert against.log == []
