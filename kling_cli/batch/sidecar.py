"""`NAME.json` beside each video `--sidecar` saves: what made it."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from .. import download
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
    fd, tmp = tempfile.mkstemp(dir=video.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, download.ordinary_file_mode())  # as the video's: mkstemp makes 0600
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
