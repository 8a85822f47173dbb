"""The sandbox's tasks, uploads and balance, without sockets: what the HTTP side asks and stores.

A task's answer is computed from the clock each time it is asked for, so nothing runs in the
background: queued for `queue_seconds`, then in_progress for `run_seconds` with progress rising
linearly to 99, then final (or, with `[stall]`, never). Prompt markers (see the package
docstring) choose how it ends, and whether the submit's answer is lost (`Lost`).

A task may carry the caller's business id (`client_business_id`): it is echoed in every answer
of the task, and names the task as its id does (the most recent one, when several share it).

Each created task is charged to one account (see `prices.task_cost`); the balance only
reports it, and never refuses a task.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .defaults import IN_PROCESS
from .prices import task_cost
from .rules import (
    BUSINESS_ID,
    DEFAULT_ASPECT_RATIO,
    PLACEHOLDER_RE,
    JsonObj,
    Rejection,
    business_id,
    is_omni_form,
    validate_generation,
)

EXPIRY_SECONDS = 24 * 3600
SLOW_FACTOR = 10.0
MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# -- status spellings (API.md section 2): the one table the sandbox asks "final? completed?" --
COMPLETED, FAILED, PENDING = "completed", "failed", "pending"
STATUS_KINDS: Mapping[str, str] = {
    **dict.fromkeys(("completed", "succeed", "succeeded", "success"), COMPLETED),
    **dict.fromkeys(("failed", "cancelled", "canceled", "expired", "error"), FAILED),
    **dict.fromkeys(
        ("queued", "submitted", "in_progress", "processing", "pending", "running"), PENDING
    ),
}

UNKNOWN_KEY_ANSWER: JsonObj = {
    "success": False,
    "message": "Failed to get token info: record not found",
}

MARKER_RE = re.compile(
    r"\[(fail-text|fail|no-video|expired|slow|stall|lost-no-task|lost"
    r"|url:[a-z_.]+|status:[a-z0-9_-]+)\]",
    re.IGNORECASE,
)
# The markers that lose a submit's answer: the task made all the same, or not made at all.
LOST, LOST_NO_TASK = "lost", "lost-no-task"
# Crockford base32, as ULIDs use: upper case, no I, L, O or U.
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Set a field to this with `set_task` to remove it from the task's answer.
DELETE: Any = object()


@dataclass
class Task:
    id: str
    model: str
    prompt: str  # as stored: with `<<<image_1>>>` prepended where the service would (seed form)
    aspect_ratio: str
    metadata: JsonObj
    markers: frozenset[str]
    body: JsonObj  # the body as sent, extra fields included
    created_mono: float
    created_wall: float
    cost: float = 0.0
    business_id: str | None = None  # `client_business_id`, from the top level or metadata
    completed_wall: float | None = None  # fixed by the first answer that says it is done
    overrides: JsonObj = field(default_factory=dict)

    def marker_value(self, prefix: str) -> str | None:
        """The value of a `[prefix:value]` marker (the first, alphabetically, if several)."""
        return next(
            (m[len(prefix) + 1 :] for m in sorted(self.markers) if m.startswith(prefix + ":")), None
        )


@dataclass(frozen=True)
class Lost:
    """A submit whose answer never leaves (`[lost]`, `[lost-no-task]`): the connection closes.
    `task_id`: the task made all the same, or None when none was."""

    task_id: str | None


@dataclass(frozen=True)
class Upload:
    id: str
    ext: str
    mime_type: str
    data: bytes

    @property
    def name(self) -> str:
        return f"{self.id}.{self.ext}"


def task_not_found() -> Rejection:
    error = {"message": "task not found", "type": "invalid_request_error", "code": "task_not_found"}
    return Rejection(404, {"error": error})


def status_kind(status: object) -> str:
    """COMPLETED, FAILED or PENDING; a status the table does not know is still running."""
    return STATUS_KINDS.get(status.lower(), PENDING) if isinstance(status, str) else PENDING


def new_task_id(wall: float) -> str:
    """`video_` + 26 Crockford base32 characters: 10 of time (ms), 16 random, like a ULID."""
    value = (int(wall * 1000) << 80) | secrets.randbits(80)
    chars = [_B32[(value >> (5 * i)) & 31] for i in range(25, -1, -1)]
    return "video_" + "".join(chars)


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(extension, MIME type) from the magic bytes, for the types the service accepts."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg", "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif", "image/gif"
    return None


class SandboxState:
    """Tasks, uploads and what the tasks spent, under one lock (handlers run on many threads)."""

    def __init__(
        self,
        file_base_url: str,
        queue_seconds: float = IN_PROCESS.queue_seconds,
        run_seconds: float = IN_PROCESS.run_seconds,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.file_base_url = file_base_url.rstrip("/")
        self.queue_seconds = max(0.0, queue_seconds)
        self.run_seconds = max(0.0, run_seconds)
        self.clock = clock
        self.wall_clock = wall_clock
        self.tasks_created = 0
        self.spent = 0.0  # what the created tasks cost, all keys together
        self._tasks: dict[str, Task] = {}
        # Each business id's tasks, oldest first (a second task with the same id is made).
        self._by_business_id: dict[str, list[Task]] = {}
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.RLock()

    # -- generations -------------------------------------------------------------------------

    def create_task(
        self, body: object, max_running: int | None = None
    ) -> JsonObj | Rejection | Lost:
        """Validate and create; the task's first answer, or the error answer (nothing created),
        or `Lost` when the prompt asks for the answer to be lost (`[lost-no-task]`: nothing
        created either). The markers act only on a request that would make a task."""
        rejection = validate_generation(body)
        if rejection is not None:
            return rejection
        assert isinstance(body, dict)  # validate_generation checked it
        prompt: str = body["prompt"]
        referenced = any(kind == "image" for kind, _ in PLACEHOLDER_RE.findall(prompt))
        if body.get("image_urls") and not referenced and not is_omni_form(body):
            # What the service does with unreferenced images, in the seed's form only.
            prompt = "<<<image_1>>>" + prompt
        with self._lock:
            # The check and the creation under one lock: concurrent POSTs must not both fit.
            if max_running is not None and self.running_count() >= max_running:
                message = "parallel task over resource pack limit"
                error = {"code": 1303, "message": message, "type": "rate_limit_error"}
                return Rejection(429, {"error": error}, {"Retry-After": "1"})
            markers = frozenset(m.lower() for m in MARKER_RE.findall(body["prompt"]))
            if LOST_NO_TASK in markers:
                return Lost(None)
            wall = self.wall_clock()
            task = Task(
                id=new_task_id(wall),
                model=body["model"],
                prompt=prompt,
                aspect_ratio=body.get("aspect_ratio", DEFAULT_ASPECT_RATIO),
                metadata=dict(body.get("metadata") or {}),
                markers=markers,
                body=dict(body),
                created_mono=self.clock(),
                created_wall=wall,
                cost=task_cost(body),
                business_id=business_id(body),
            )
            self._tasks[task.id] = task
            if task.business_id is not None:
                self._by_business_id.setdefault(task.business_id, []).append(task)
            self.tasks_created += 1
            self.spent += task.cost
            return Lost(task.id) if LOST in markers else self._view(task)

    def running_count(self) -> int:
        with self._lock:
            views = (self._view(t) for t in self._tasks.values())
            return sum(1 for v in views if status_kind(v.get("status")) == PENDING)

    def balance(self, starting: float, unlimited: bool) -> JsonObj:
        """The `/v1/balance` answer for a known key: `starting` less what was spent."""
        with self._lock:
            spent = self.spent
        return {
            "success": True,
            "remain_balance": -1 if unlimited else round(starting - spent, 4),
            "used_balance": round(spent, 4),
            "unlimited_quota": unlimited,
        }

    def get_task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def all_tasks(self) -> list[Task]:
        with self._lock:
            return list(self._tasks.values())

    def tasks_with_business_id(self, business_id: str) -> list[Task]:
        """Every task made with this business id, oldest first (several when it was reused)."""
        with self._lock:
            return list(self._by_business_id.get(business_id, []))

    def business_id_counts(self) -> Counter[str]:
        """How many tasks each business id made (tasks without one left out): a count above 1
        is a send that made a second task."""
        with self._lock:
            return Counter({bid: len(tasks) for bid, tasks in self._by_business_id.items()})

    def view(self, ref: str) -> JsonObj | None:
        """The answer now of the task `ref` names, as `GET /v1/videos/generations/{ref}` reads
        it: a task id, else a business id (its most recent task); None when it names none."""
        with self._lock:
            task = self._tasks.get(ref)
            if task is None and ref in self._by_business_id:
                task = self._by_business_id[ref][-1]
            return None if task is None else self._view(task)

    def set_task(self, task_id: str, **fields: Any) -> None:
        """Override top-level fields of the answer (DELETE removes one); KeyError if unknown."""
        with self._lock:
            self._tasks[task_id].overrides.update(fields)

    def video_url(self, task_id: str) -> str:
        return f"{self.file_base_url}/videos/{task_id}.mp4"

    def _view(self, task: Task) -> JsonObj:
        factor = SLOW_FACTOR if "slow" in task.markers else 1.0
        queue, run = self.queue_seconds * factor, self.run_seconds * factor
        elapsed = self.clock() - task.created_mono
        view: JsonObj = {
            "id": task.id,
            "object": "generation.task",
            "model": task.model,
            "status": "queued",
            "progress": 0,
            "created_at": int(task.created_wall),
            "metadata": dict(task.metadata),
        }
        if task.business_id is not None:
            view[BUSINESS_ID] = task.business_id
        if elapsed >= queue + run and "stall" not in task.markers:  # [stall]: never final
            # Never in the future (a test's lifecycle clock runs ahead), and fixed once said.
            if task.completed_wall is None:
                task.completed_wall = min(task.created_wall + queue + run, self.wall_clock())
            view.update(self._final(task, int(task.completed_wall)))
        elif elapsed >= queue:
            word = task.marker_value("status")
            # [status:WORD]: a pending spelling, or a word nobody knows, shown while it runs.
            running = word is not None and status_kind(word) == PENDING
            view["status"] = word if running else "in_progress"
            ran = (elapsed - queue) / run if run > 0 else 1.0  # [stall] with --run-seconds 0
            view["progress"] = min(99, math.floor(ran * 100))
        for key, value in task.overrides.items():
            if value is DELETE:
                view.pop(key, None)
            else:
                view[key] = value
        return view

    def _final(self, task: Task, completed_at: int) -> JsonObj:
        markers = task.markers
        word = task.marker_value("status")
        kind = status_kind(word) if word is not None else None
        failure = self._failure(markers, word if kind == FAILED else None)
        if failure is not None:
            return failure
        # [expired]: as if the user came back after the URL stopped working.
        expires_at = completed_at - 1 if "expired" in markers else completed_at + EXPIRY_SECONDS
        final: JsonObj = {
            "status": word if kind == COMPLETED else "completed",
            "progress": 100,
            "completed_at": completed_at,
            "expires_at": expires_at,
        }
        url = self.video_url(task.id)
        # [url:PLACE] puts the video URL in one of the places API.md lists; [no-video]: nowhere.
        places: dict[str, JsonObj] = {
            "no-video": {"result": {"type": "video", "data": []}},
            "top": {"result": {"type": "video"}, "url": url},
            "video_url": {"result": {"type": "video"}, "video_url": url},
            "result.url": {"result": {"type": "video", "url": url}},
            "videos": {"result": {"type": "video", "videos": [{"url": url}]}},
            "list": {"result": {"type": "video", "data": [{"url": [url]}]}},
        }
        place = "no-video" if "no-video" in markers else task.marker_value("url") or ""
        return final | places.get(place, {"result": {"type": "video", "data": [{"url": url}]}})

    @staticmethod
    def _failure(markers: frozenset[str], failed_word: str | None) -> JsonObj | None:
        """How a failing task ends: [fail], [fail-text] or a failed `[status:...]` spelling,
        which also names the status; None when the task does not fail."""
        if "fail" in markers:
            error: Any = {
                "code": "content_policy",
                "message": "sandbox: the prompt asked to fail ([fail])",
            }
        elif "fail-text" in markers:
            error = "sandbox: the prompt asked to fail ([fail-text])"
        elif failed_word is not None:
            error = {
                "code": failed_word,
                "message": f"sandbox: the prompt asked for status {failed_word} "
                f"([status:{failed_word}])",
            }
        else:
            return None
        # The progress stays where the run left it: a failure is not a finished video.
        return {"status": failed_word or "failed", "progress": 99, "error": error}

    def video_file(self, task_id: str) -> tuple[int, str]:
        """What the video host answers for a task's clip: (200, aspect ratio), 404 or 410."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return 404, ""
            view = self._view(task)
            if status_kind(view.get("status")) != COMPLETED:
                return 404, ""
            expires_at = view.get("expires_at")
            expired = "expired" in task.markers or (
                isinstance(expires_at, (int, float)) and expires_at < self.wall_clock()
            )
            return (410, "") if expired else (200, task.aspect_ratio)

    # -- uploads -----------------------------------------------------------------------------

    def add_upload(self, data: bytes | None) -> tuple[int, JsonObj]:
        """Store an uploaded image; (status, JSON answer) as the service gives them."""
        if not data:
            return 400, {"success": False, "message": "Bad Request: file is required"}
        if len(data) > MAX_UPLOAD_BYTES:
            return 400, {"success": False, "message": "File Too Large"}
        kind = sniff_image(data)
        if kind is None:
            return 400, {"success": False, "message": "Bad Request: unsupported file type"}
        ext, mime = kind
        with self._lock:
            upload_id = "upload_" + secrets.token_hex(4)
            while upload_id in self._uploads:
                upload_id = "upload_" + secrets.token_hex(4)
            upload = Upload(upload_id, ext, mime, data)
            self._uploads[upload_id] = upload
        return 200, {
            "success": True,
            "message": "",
            "data": {
                "id": upload.id,
                "url": f"{self.file_base_url}/uploads/{upload.name}",
                "mime_type": mime,
                "size": len(data),
            },
        }

    def get_upload(self, name: str) -> Upload | None:
        """The upload served as `/uploads/<name>`, where name is `<id>.<ext>`."""
        upload_id, _, ext = name.partition(".")
        with self._lock:
            upload = self._uploads.get(upload_id)
        return upload if upload is not None and upload.ext == ext else None
