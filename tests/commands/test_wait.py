"""kling wait / status / download through the CLI entry point, against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

FAST = ("--interval", "0.1")


def submit(kling, prompt: str = "a fox", *args: str) -> str:
    result = kling("generate", prompt, "-q", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_wait_many_tasks_one_document_each(kling, against) -> None:
    ids = [submit(kling, f"fox {n}") for n in range(3)]
    result = kling("wait", *ids, *FAST, "--json")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["id"] for d in docs] == ids
    assert {d["status"] for d in docs} == {"completed"}


def test_wait_quiet_prints_urls_and_saves_to_folder(kling, against, tmp_path: Path) -> None:
    ids = [submit(kling), submit(kling, "a cat", "--aspect-ratio", "9:16")]
    urls = kling("wait", *ids, *FAST, "-q").stdout.split()
    assert all(u.startswith(against.file_base_url) for u in urls) and len(urls) == 2
    out = tmp_path / "videos"
    out.mkdir()
    paths = kling("wait", *ids, *FAST, "-q", "-o", str(out)).stdout.split()
    assert [Path(p).name for p in paths] == [f"{i}.mp4" for i in ids]
    assert Path(paths[1]).read_bytes() == against.clip_bytes("9:16")


def test_wait_exit_code_is_first_failure_in_argument_order(kling, against) -> None:
    ok, bad = submit(kling), submit(kling, "[fail] a fox")
    assert kling("wait", ok, bad, *FAST).exit_code == 6
    result = kling("wait", "video_NOPE", ok, *FAST)
    assert result.exit_code == 4 and "video_NOPE" in result.stderr


def test_wait_plain_progress_lines_on_stderr_only_on_change(kling, against) -> None:
    task_id = submit(kling)
    result = kling("wait", task_id, *FAST)
    lines = [line for line in result.stderr.splitlines() if task_id in line]
    assert any("completed" in line for line in lines)
    assert len(lines) == len(set(lines))  # no repeated identical updates
    assert result.stdout.split("\t")[1] == "completed"


def test_no_progress_silences_stderr(kling, against) -> None:
    task_id = submit(kling)
    result = kling("--no-progress", "wait", task_id, *FAST)
    assert result.exit_code == 0 and result.stderr == ""


def test_wait_timeout_exits_7(kling, against) -> None:
    task_id = submit(kling, "[slow] a fox")
    result = kling("wait", task_id, "--timeout", "0.2", *FAST)
    assert result.exit_code == 7 and f"kling wait {task_id}" in result.stderr


def test_wait_file_output_with_several_tasks_exits_2(kling, against, tmp_path: Path) -> None:
    ids = [submit(kling), submit(kling)]
    result = kling("wait", *ids, "-o", str(tmp_path / "one.mp4"))
    assert result.exit_code == 2 and "folder" in result.stderr


def test_status_once(kling, against) -> None:
    task_id = submit(kling)
    result = kling("status", task_id, "-q")
    assert result.exit_code == 0 and result.stdout.strip() in {"queued", "in_progress"}
    doc = json.loads(kling("status", task_id, "--json").stdout)
    assert doc["id"] == task_id and "output_files" not in doc


def test_an_unknown_status_is_shown_as_it_came(kling, against) -> None:
    """`Rendering_HD` read `rendering_hd` everywhere but in --json (API.md: an unknown status
    is shown as it came); it is still a pending task, polled on."""
    task_id = submit(kling)
    against.set_task(task_id, status="Rendering_HD")
    assert kling("status", task_id, "-q").stdout == "Rendering_HD\n"
    shown = kling("status", task_id)
    assert shown.exit_code == 0 and shown.stdout.split("\t")[1] == "Rendering_HD"
    assert json.loads(kling("status", task_id, "--json").stdout)["status"] == "Rendering_HD"
    waited = kling("wait", task_id, "--timeout", "0.3", *FAST)
    assert waited.exit_code == 7 and "(still Rendering_HD)" in waited.stderr
    assert "rendering_hd" not in waited.stderr + waited.stdout
    assert kling("list").stdout.split("\t")[1] == "Rendering_HD"


def test_status_unknown_task_exits_4(kling, against) -> None:
    result = kling("status", "video_UNKNOWN")
    assert result.exit_code == 4 and "not found" in result.stderr


def test_status_failed_task_exits_6(kling, against) -> None:
    task_id = submit(kling, "[fail] x")
    kling("wait", task_id, *FAST)
    assert kling("status", task_id, "-q").stdout.strip() == "failed"
    assert kling("status", task_id).exit_code == 6


def test_download_to_current_folder_by_default(kling, against, isolated: Path) -> None:
    task_id = submit(kling)
    kling("wait", task_id, *FAST)
    result = kling("download", task_id, "-q")
    assert result.exit_code == 0
    saved = Path(result.stdout.strip())
    assert saved == (Path.cwd() / f"{task_id}.mp4").resolve()
    assert saved.read_bytes() == against.clip_bytes()
    again = kling("download", task_id)  # the journal's own file for the task: done already
    assert again.exit_code == 0
    saved.write_bytes(b"edited since")
    changed = kling("download", task_id)
    assert changed.exit_code == 2 and "--force" in changed.stderr
    assert kling("download", task_id, "--force").exit_code == 0


def test_download_uses_output_dir_setting(kling, against, tmp_path: Path) -> None:
    task_id = submit(kling)
    kling("wait", task_id, *FAST)
    kling("config", "set", "output_dir", str(tmp_path))
    saved = Path(kling("download", task_id, "-q").stdout.strip())
    assert saved.parent == tmp_path.resolve()


def test_download_not_final_yet_exits_7(kling, against) -> None:
    task_id = submit(kling, "[slow] x")
    result = kling("download", task_id)
    assert result.exit_code == 7 and "kling wait" in result.stderr


def test_download_json_and_journal_records_file(kling, against) -> None:
    task_id = submit(kling)
    kling("wait", task_id, *FAST)
    doc = json.loads(kling("download", task_id, "--json").stdout)
    assert Path(doc["output_files"][0]).is_file()
    listed = json.loads(kling("list", "--json").stdout.splitlines()[0])
    assert listed["id"] == task_id and listed["output_files"] == doc["output_files"]


def test_download_finds_url_in_every_place(kling, against, tmp_path: Path) -> None:
    for shape in ("top", "video_url", "result.url", "videos", "list"):
        task_id = submit(kling, f"[url:{shape}] a fox")
        result = kling("wait", task_id, *FAST, "-o", str(tmp_path) + "/", "-q")
        assert result.exit_code == 0, (shape, result.stderr)
        assert Path(result.stdout.strip()).read_bytes() == against.clip_bytes()


def test_expired_url_is_fetched_again(kling, against, tmp_path: Path) -> None:
    task_id = submit(kling, "[expired] a fox")
    result = kling("wait", task_id, *FAST, "-o", str(tmp_path / "x.mp4"))
    # The sandbox keeps refusing an expired video: a fresh query is tried, then a clear error.
    gets = [r for r in against.log if r.path.endswith(task_id)]
    assert result.exit_code == 6 and "410" in result.stderr
    assert len(gets) >= 2
    assert not (tmp_path / "x.mp4").exists()


def test_an_unknown_id_is_one_error_and_no_result(kling, against) -> None:
    """A task the service does not know has no status to print: stdout stays empty in every
    output form, and stderr says why once (no "unknown" progress line before it)."""
    error = "kling: error: video_NOPE: the service answered 404: task not found"
    for command in (["wait", *FAST], ["download"]):
        for form in ([], ["-q"], ["--json"]):
            result = kling(*command, "video_NOPE", *form)
            assert result.exit_code == 4 and result.stdout == "", (command, form)
            if not form:
                assert [line for line in result.stderr.splitlines() if "NOPE" in line][-1] == error
                assert result.stderr.count("task not found") == 1
                assert "unknown" not in result.stderr
    ok = submit(kling)
    both = kling("wait", "video_NOPE", ok, *FAST)
    assert both.exit_code == 4 and both.stdout.startswith(f"{ok}\tcompleted")
    assert len(both.stdout.splitlines()) == 1


def test_download_tries_again_when_the_video_host_fails(kling, against, tmp_path: Path) -> None:
    """A GET of the video is retried as any GET is (API.md: every GET is safe to retry): a
    429, a 5xx or a connection dropped before any answer costs a try, not the download."""
    from tests.scripted_server import Reply, ScriptedServer

    task_id = submit(kling)
    kling("wait", task_id, *FAST)
    clip = against.clip_bytes()
    with ScriptedServer() as host:
        host.add(
            "GET", "/v.mp4",
            Reply(503, "busy"), Reply(drop=True), Reply(429, "slow down", {"Retry-After": "1"}),
            Reply(502, "<html><title>502 Bad Gateway</title></html>"),
            Reply(200, clip, {"Content-Type": "video/mp4"}),
        )  # fmt: skip
        against.set_task(task_id, result={"type": "video", "data": [{"url": host.url + "/v.mp4"}]})
        result = kling("download", task_id, "-o", str(tmp_path / "v.mp4"), "-q")
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "v.mp4").read_bytes() == clip
        assert len(host.seen("GET", "/v.mp4")) == 5


def test_a_video_url_that_redirects_is_followed_without_the_key(
    kling, against, tmp_path: Path
) -> None:
    """Video URLs are often a redirect to a CDN or a signed address: followed, as curl -L
    would, and the key goes to neither host, the API's own origin included."""
    from tests.scripted_server import Reply, ScriptedServer

    task_id = submit(kling)
    kling("wait", task_id, *FAST)
    clip = against.clip_bytes()
    with ScriptedServer() as first, ScriptedServer() as cdn:
        first.add("GET", "/v.mp4", Reply(302, "", {"Location": cdn.url + "/signed/v.mp4?s=1"}))
        cdn.add("GET", "/signed/v.mp4?s=1", Reply(200, clip, {"Content-Type": "video/mp4"}))
        against.set_task(task_id, result={"type": "video", "data": [{"url": first.url + "/v.mp4"}]})
        result = kling("download", task_id, "-o", str(tmp_path / "v.mp4"), "-q")
        assert result.exit_code == 0, result.stderr
        assert (tmp_path / "v.mp4").read_bytes() == clip
        seen = [*first.seen("GET", "/v.mp4"), *cdn.seen("GET", "/signed/v.mp4?s=1")]
        assert len(seen) == 2
        assert not [s for s in seen if "authorization" in {k.lower() for k in s.headers}]


def test_a_video_url_that_redirects_in_a_loop_is_said_once_not_retried(
    kling, against, tmp_path: Path
) -> None:
    from tests.scripted_server import Reply, ScriptedServer

    task_id = submit(kling)
    kling("wait", task_id, *FAST)
    with ScriptedServer() as host:
        host.add("GET", "/v.mp4", *[Reply(302, "", {"Location": "/v.mp4"})] * 11)
        against.set_task(task_id, result={"type": "video", "data": [{"url": host.url + "/v.mp4"}]})
        result = kling("download", task_id, "-o", str(tmp_path / "v.mp4"), "-q")
        assert result.exit_code == 5
        assert "too many redirects" in result.stderr
        assert len(host.seen("GET", "/v.mp4")) == 11  # one try: another would loop again
    assert not (tmp_path / "v.mp4").exists()
