"""The gallery rows: `kling gallery DIR` over 1,000 videos (the sandbox's real clips), as
`batch --sidecar` leaves them (a sidecar each) and as `wait -o` leaves them (only the journal
knows them), the whole process against `python -c pass`; the page's own work (gather, render,
write) timed inside one process; and the page's size. Goal: the page in under a second."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from .measure import Stats, run

if TYPE_CHECKING:
    from .__main__ import Bench

VIDEOS = 1000
BASE_URL = "https://toapis.com"
RATIOS = ("16:9", "9:16", "1:1")
HARNESS = """
import sys, time
from pathlib import Path
from kling_cli import gallery
from kling_cli.store.journal import Journal
folder, journal = Path(sys.argv[1]), Journal(Path(sys.argv[3]))
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    gallery.write_page(folder, gallery.render(gallery.gather(folder, journal.entries)))
    times.append(time.perf_counter() - start)
print(" ".join(f"{t:.6f}" for t in times))
"""


def body(n: int) -> dict[str, object]:
    return {
        "model": "kling-v3-omni",
        "prompt": f"scene {n}: a red fox running through snow, golden hour, 35 mm film",
        "mode": "std",
        "duration": 5,
        "aspect_ratio": RATIOS[n % 3],
        "metadata": {"image_list": [{"image_url": f"https://example.com/refs/{n}.png"}]},
    }


def make_folder(root: Path, sidecars: bool) -> Path:
    """1,000 real clips named as batch names them, with a sidecar each or none."""
    from kling_cli import sandbox

    assets = Path(sandbox.__file__).parent / "assets"
    folder = root / ("with-sidecars" if sidecars else "journal-only")
    folder.mkdir()
    for n in range(1, VIDEOS + 1):
        ratio = RATIOS[n % 3]
        name = f"{n:04d}-video_bench_{n:04d}.mp4"
        shutil.copy(assets / f"clip_{ratio.replace(':', 'x')}.mp4", folder / name)
        if sidecars:
            doc = {"line": n, "task_id": f"video_bench_{n:04d}", "prompt": body(n)["prompt"],
                   "parameters": body(n), "video_file": name, "created_at": 1796379288 + n,
                   "completed_at": 1796379300 + n, "saved_at": 1796379301 + n}  # fmt: skip
            (folder / name).with_suffix(".json").write_text(json.dumps(doc, indent=2))
    return folder


def seed(home: Path, folder: Path) -> None:
    """The journal of the runs that saved `folder`'s videos, as kling records them."""
    from kling_cli.api.tasks import TaskView
    from kling_cli.store.journal import JOURNAL_FILE, Journal

    journal = Journal(home / JOURNAL_FILE)
    for n in range(1, VIDEOS + 1):
        task = {"id": f"video_bench_{n:04d}", "status": "completed", "progress": 100,
                "created_at": 1796379288 + n, "completed_at": 1796379300 + n}  # fmt: skip
        journal.record_submitted(TaskView.of(task), BASE_URL, body(n))
        journal.add_file(task["id"], folder / f"{n:04d}-video_bench_{n:04d}.mp4")
    journal.close()


def gallery_rows(b: Bench) -> None:
    from .__main__ import Row, checked, ms, side_by_side, verdict

    root = b.work / "gallery"
    root.mkdir()
    home = root / "home"
    home.mkdir()
    try:
        for sidecars in (True, False):
            folder = make_folder(root, sidecars)
            if not sidecars:
                seed(home, folder)
            env = {**b.env, "KLING_HOME": str(home)}
            argv = b.kling_argv("gallery", str(folder), "-q")
            subj, ref = side_by_side(
                lambda argv=argv, env=env: checked(run(argv, env, cwd=b.work), "kling gallery"),
                lambda: checked(run([b.python, "-c", "pass"], b.env, cwd=b.work), "python"),
                b.runs,
            )
            k, r = Stats.of([x.wall for x in subj]), Stats.of([x.wall for x in ref])
            size = (folder / "index.html").stat().st_size
            how = "a sidecar each" if sidecars else "the journal's 1,000 tasks, no sidecars"
            b.add(
                Row(
                    f"`kling gallery` of {VIDEOS:,} videos ({how}), whole process",
                    f"{ms(k)}, page {size:,} bytes",
                    f"`python -c pass` {ms(r)}",
                    f"{k.median:.2f} s",
                    "< 1 s",
                    verdict(k.median < 1.0),
                )
            )
            harness = subprocess.run(
                [b.python, "-c", HARNESS, str(folder), str(b.runs), str(home / "journal.sqlite3")],
                env={**b.env, "KLING_HOME": str(home)}, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            inner = Stats.of([float(t) for t in harness.stdout.split()])
            b.add(
                Row(
                    f"  its gather + render + atomic write, timed in one process ("
                    f"{'sidecars' if sidecars else 'the journal'})",
                    ms(inner),
                    "",
                    f"{inner.median * 1000:.0f} ms",
                    "< 1 s",
                    verdict(inner.median < 1.0),
                )
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
