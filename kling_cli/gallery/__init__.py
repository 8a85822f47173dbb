"""`kling gallery FOLDER`: one self-contained HTML page over a folder of videos.

Three steps, each its own module, so that what reads the disk and the journal stays apart
from what draws the page:

- `gather(folder, journal)` (gather.py): the folder's videos and what made each (sidecar,
  journal, or the file alone), and the lines a batch recorded as making none -> `Gallery`;
- `render(gallery)` (render.py): `Gallery` -> the page, a string (pure);
- `write_page(folder, page)` (files.py): the page into `folder/index.html`, atomically.

`LineRecords` (files.py) is what `batch --gallery` calls as each line ends. kling's command
is kling_cli.commands.gallery; this package imports neither the engine nor the client.
"""

from __future__ import annotations

from .files import PAGE, RECORDS, LineRecords, read_records, write_page
from .gather import JournalTask, gather, references
from .model import Card, Gallery, Reference
from .render import content_security_policy, render

__all__ = [
    "PAGE",
    "RECORDS",
    "Card",
    "Gallery",
    "JournalTask",
    "LineRecords",
    "Reference",
    "content_security_policy",
    "gather",
    "read_records",
    "references",
    "render",
    "write_page",
]
