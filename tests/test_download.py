"""Downloads over real sockets: verified length, Range resume, nothing partial at the target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kling_cli import download
from kling_cli.api.client import Client
from kling_cli.errors import ServiceUnavailable, UsageError, VideoURLExpired
from tests.scripted_server import Reply, ScriptedServer

VIDEO = bytes(range(256)) * 4096 * 3  # 3 MiB of known bytes


def opener():
    """The client's streamed GET of a video."""
    client = Client("http://127.0.0.1:9/", "sk-test", timeout=(5, 5))
    return client.open_video


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_download_complete(server: ScriptedServer, out: Path) -> None:
    server.add("GET", "/v.mp4", Reply(200, VIDEO, {"Content-Type": "video/mp4"}))
    seen: list[tuple[int, int | None]] = []
    path = download.download(
        server.url + "/v.mp4", out / "v.mp4", opener(),
        on_bytes=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert path.read_bytes() == VIDEO
    assert seen[-1] == (len(VIDEO), len(VIDEO))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    assert leftovers(out) == []


def test_truncated_body_resumes_with_range(server: ScriptedServer, out: Path) -> None:
    # Cut in the third chunk: every byte received is kept, the rest is asked for with Range.
    half = 2 * download.CHUNK + 1000
    server.add(
        "GET", "/v.mp4",
        Reply(200, VIDEO, send_bytes=half),
        Reply(206, VIDEO[half:], {"Content-Range": f"bytes {half}-{len(VIDEO) - 1}/{len(VIDEO)}"}),
    )  # fmt: skip
    path = download.download(server.url + "/v.mp4", out / "v.mp4", opener())
    assert path.read_bytes() == VIDEO
    assert server.seen("GET", "/v.mp4")[1].headers["Range"] == f"bytes={half}-"


def test_host_ignoring_range_starts_over(server: ScriptedServer, out: Path) -> None:
    server.add("GET", "/v.mp4", Reply(200, VIDEO, send_bytes=1000), Reply(200, VIDEO))
    path = download.download(server.url + "/v.mp4", out / "v.mp4", opener())
    assert path.read_bytes() == VIDEO


def test_always_truncated_leaves_nothing(server: ScriptedServer, out: Path) -> None:
    server.add("GET", "/v.mp4", *[Reply(200, VIDEO, send_bytes=10)] * download.ATTEMPTS)
    with pytest.raises(ServiceUnavailable, match="failed"):
        download.download(server.url + "/v.mp4", out / "v.mp4", opener())
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("status", [403, 404, 410])
def test_expired_url_is_reported_as_such(server: ScriptedServer, out: Path, status: int) -> None:
    server.add("GET", "/v.mp4", Reply(status, "gone"))
    with pytest.raises(VideoURLExpired):
        download.download(server.url + "/v.mp4", out / "v.mp4", opener())
    assert list(out.iterdir()) == []


def test_existing_target_needs_force(server: ScriptedServer, out: Path) -> None:
    target = out / "v.mp4"
    target.write_bytes(b"keep")
    with pytest.raises(UsageError):
        download.download(server.url + "/v.mp4", target, opener())
    assert target.read_bytes() == b"keep" and server.requests == []
    server.add("GET", "/v.mp4", Reply(200, VIDEO))
    download.download(server.url + "/v.mp4", target, opener(), force=True)
    assert target.read_bytes() == VIDEO


@pytest.mark.parametrize(
    "task_id",
    ["../../etc/passwd", "/abs/path", "a\x00b", "x" * 1000, "..", "", "con/../../x", "ok_id-1.2"],
)
def test_file_names_never_leave_the_folder(task_id: str, out: Path) -> None:
    name = download.safe_filename(task_id)
    target = download.target_for(task_id, out, None)
    assert target.parent == out and target.name == name
    assert "/" not in name and "\x00" not in name and not name.startswith(".")
    assert len(name) <= download.MAX_NAME + 4
