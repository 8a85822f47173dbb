"""`NAME.json` beside each video `--sidecar` saves: what made it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..paths import write_atomically
from .lines import Line


def write_sidecar(line: Line, video: Path) -> Path:
    """`NAME.json` beside `NAME.mp4`: what made the video, so a folder explains itself."""
    task = line.view
    document = {
        "line": line.number,
        "task_id": line.task_id,
        "prompt": line.request.prompt,
        "parameters": line.body,
        "video_url": task.video_url,
        "video_file": video.name,
        "created_at": task.raw.get("created_at"),
        "completed_at": task.raw.get("completed_at"),
        "saved_at": int(time.time()),
    }
    target = video.with_suffix(".json")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_atomically(target, text.encode())  # the mode the video has: the umask's
    return target
