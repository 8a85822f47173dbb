"""Images as the user gives them: URLs or local files, checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from kling_cli.api import images
from kling_cli.errors import UsageError


def test_images_classified(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert images.classify_image("https://x/a.png") == ("url", "https://x/a.png")
    assert images.classify_image(str(png)) == ("file", png)
    for bad in ["data:image/png;base64,AA", "ftp://x/a.png", str(tmp_path / "missing.png")]:
        with pytest.raises(UsageError):
            images.classify_image(bad)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"0" * (10 * 1024 * 1024))
    with pytest.raises(UsageError, match="10 MB"):
        images.classify_image(str(big))
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(UsageError, match="JPEG, PNG"):
        images.classify_image(str(txt))
