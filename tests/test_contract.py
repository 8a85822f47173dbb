"""The documents of the service's own pages (API.md sections 1c, 3 and 4), verbatim, through the
client and the task model, without the sandbox: the sandbox and the client share their
authors' reading of the pages, so a round trip between them proves they agree, not that either
is right. These are the pages' own examples."""
# ruff: noqa: E501  (the pages' examples, verbatim, with their own line breaks)

from __future__ import annotations

import json

import pytest

from kling_cli.api.balance import Balance
from kling_cli.api.client import Client
from kling_cli.api.tasks import State
from kling_cli.errors import APIError, AuthError, ExitCode
from tests.scripted_server import Reply, ScriptedServer

TASKS = "/v1/videos/generations"
KEY = "sk-contract-0123456789abcdef"

# API.md 1c, "Response (200)" of the submit.
SUBMITTED = """{"id": "video_01J9HA7JPQ9A0Z6JZ3V8M9W6PZ", "object": "generation.task", "model": "kling-v3-omni",
 "status": "queued", "progress": 0, "created_at": 1768380224, "metadata": {}}"""
# API.md 1c, "The task document on completion".
COMPLETED = """{"id": "video_...", "object": "generation.task", "model": "kling-v3-omni", "status": "completed",
 "progress": 100, "created_at": 1768380224, "completed_at": 1768380514, "expires_at": 1768466914,
 "result": {"type": "video", "data": [{"url": "https://.../video.mp4", "format": "mp4"}]}}"""
# API.md 3, "Response (200)" of the upload.
UPLOADED = """{"success": true, "message": "", "data": {"id": "upload_abc12345",
 "url": "https://files.toapis.com/uploads/123/1737568800_abc12345.jpg",
 "mime_type": "image/jpeg", "size": 89234}}"""
# API.md 4: the balance, and a key the service does not know.
BALANCE = (
    """{"success": true, "remain_balance": 10.5, "used_balance": 2.3, "unlimited_quota": false}"""
)
UNKNOWN_KEY = """{"success": false, "message": "Failed to get token info: record not found"}"""


def page(text: str) -> bytes:
    """The page's example as bytes: checked to be the JSON it claims to be."""
    json.loads(text)
    return text.encode()


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


def client(server: ScriptedServer) -> Client:
    return Client(server.url, KEY, backoff=0.001)


def test_the_submit_answer(server: ScriptedServer) -> None:
    server.add("POST", TASKS, Reply(200, page(SUBMITTED)))
    task = client(server).create_task({"model": "kling-v3-omni", "prompt": "a fox"})
    assert (task.id, task.status, task.progress) == (
        "video_01J9HA7JPQ9A0Z6JZ3V8M9W6PZ",
        "queued",
        0,
    )
    assert task.state is State.PENDING and task.status == "queued" and task.video_url is None


def test_the_task_document_on_completion(server: ScriptedServer) -> None:
    server.add("GET", f"{TASKS}/video_...", Reply(200, page(COMPLETED)))
    task = client(server).get_task("video_...")
    assert task.completed and task.status == "completed" and task.progress == 100
    assert task.video_url == "https://.../video.mp4"
    assert task.expires_at == 1768466914  # 24 hours after completion
    assert task.exit_code == ExitCode.OK


def test_a_failed_task_carries_its_error(server: ScriptedServer) -> None:
    failed = {"id": "video_x", "status": "failed", "error": {"code": "generation_failed",
              "message": "the content could not be generated"}}  # fmt: skip
    server.add("GET", f"{TASKS}/video_x", Reply(200, failed))
    task = client(server).get_task("video_x")
    assert task.failed and task.exit_code == ExitCode.TASK_FAILED
    assert task.error_text == "the content could not be generated (generation_failed)"


@pytest.mark.parametrize(
    ("status", "code", "kind", "exit_code"),
    [
        (400, "invalid_request", "invalid_request_error", ExitCode.REJECTED),
        (401, 401, "authentication_error", ExitCode.AUTH),
        (402, "insufficient_quota", "insufficient_quota", ExitCode.AUTH),
        (404, 404, "not_found_error", ExitCode.REJECTED),
        (422, "content_policy_violation", "invalid_request_error", ExitCode.REJECTED),
        (429, "rate_limit_exceeded", "rate_limit_error", ExitCode.UNAVAILABLE),
        (500, 500, "server_error", ExitCode.UNAVAILABLE),
    ],
)
def test_the_http_errors_of_the_page(
    server: ScriptedServer, status: int, code: object, kind: str, exit_code: int
) -> None:
    # API.md 1c: {"error": {"code": 404, "message": "...", "type": "not_found_error"}}
    document = {"error": {"code": code, "message": f"the page's words for {status}", "type": kind}}
    server.add("GET", f"{TASKS}/video_e", *[Reply(status, document)] * 6)
    with pytest.raises(APIError) as info:
        client(server).get_task("video_e")
    assert info.value.status == status and info.value.code == code
    assert info.value.service_message == f"the page's words for {status}"
    assert info.value.exit_code == exit_code


def test_the_upload_answer(server: ScriptedServer, tmp_path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff" + bytes(64))
    server.add("POST", "/v1/uploads/images", Reply(200, page(UPLOADED)))
    data = client(server).upload_image(image)
    assert data["url"] == "https://files.toapis.com/uploads/123/1737568800_abc12345.jpg"


def test_an_upload_refused_as_the_page_says(server: ScriptedServer, tmp_path) -> None:
    image = tmp_path / "big.jpg"
    image.write_bytes(b"\xff\xd8\xff" + bytes(64))
    refused = {"success": False, "message": "File Too Large"}  # API.md 3: 400, success false
    server.add("POST", "/v1/uploads/images", Reply(400, refused))
    with pytest.raises(APIError) as info:
        client(server).upload_image(image)
    assert info.value.status == 400 and "File Too Large" in info.value.message


def test_the_balance_and_an_unknown_key(server: ScriptedServer) -> None:
    server.add("GET", "/v1/balance", Reply(200, page(BALANCE)), Reply(200, page(UNKNOWN_KEY)))
    balance = Balance.of(client(server).get_balance())
    assert (balance.remaining_text, balance.used_text, balance.exhausted) == ("10.5", "2.3", False)
    with pytest.raises(AuthError, match="record not found"):
        client(server).get_balance()


def test_an_unlimited_key(server: ScriptedServer) -> None:
    unlimited = {"success": True, "remain_balance": -1, "used_balance": 3, "unlimited_quota": True}
    server.add("GET", "/v1/balance", Reply(200, unlimited))
    balance = Balance.of(client(server).get_balance())
    assert balance.remaining_text == "unlimited" and not balance.exhausted
