"""Windows before Python 3.13 has no os.fchmod, and reports mode 0o666 for every file (its
ACLs decide who reads it): `config set` failed there (AttributeError, an internal error), and
the readable-by-others warning would show on every run. Rehearsed here on Linux by taking
fchmod away and saying that modes mean nothing (os.name is `nt`), through the CLI entry point."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def windows_before_3_13(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fchmod")
    monkeypatch.setattr("kling_cli.paths.POSIX_MODES", False, raising=False)  # os.name: nt


def test_config_set_and_download_work_without_fchmod(
    kling, against, isolated: Path, windows_before_3_13
) -> None:
    result = kling("config", "set", "mode", "pro")
    assert result.exit_code == 0, result.stderr
    assert 'mode = "pro"' in (isolated / "config.toml").read_text()
    saved = kling("generate", "a fox", "-o", "fox.mp4", "--interval", "0.05", "-q")
    assert saved.exit_code == 0, saved.stderr
    assert Path("fox.mp4").read_bytes() == against.clip_bytes()


def test_no_readable_by_others_warning_where_modes_mean_nothing(
    kling, isolated: Path, windows_before_3_13
) -> None:
    assert kling("config", "set", "api_key", input="sk-test-0123456789abcdef\n").exit_code == 0
    (isolated / "config.toml").chmod(0o644)  # what Windows reports for any file
    result = kling("config", "list")
    assert result.exit_code == 0 and "can be read by other users" not in result.stderr


def test_batch_sidecars_and_gallery_work_without_fchmod(
    kling, against, tmp_path: Path, windows_before_3_13
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a fox"}\n{"prompt": "a owl"}\n')
    out = tmp_path / "videos"
    result = kling(
        "batch", str(source), "-o", str(out), "--sidecar", "--gallery", "--interval", "0.05"
    )
    assert result.exit_code == 0, result.stderr
    assert len(list(out.glob("*.mp4"))) == 2 and len(list(out.glob("*.json"))) == 2
    assert "a owl" in (out / "index.html").read_text()
