"""kling upload FILE...: upload local images and print their URLs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from .. import uploads
from ..api import images
from ..env import Env
from ..errors import UsageError
from ..output import Format, Output, choose
from .common import QuietOpt, env_of, json_option


@dataclass
class UploadOptions:
    files: list[str]  # not Path: Path("https://x/a.png") would read "https:/x/a.png"
    format: Format


def local_file(name: str) -> Path:
    kind, ref = images.classify_image(name)  # the rules of generate -i
    if kind == "url":
        raise UsageError(
            f"{name} is a URL; kling upload takes local files",
            hint="a URL needs no upload: pass it to generate -i as it is",
        )
    assert isinstance(ref, Path)
    return ref


def run_upload(env: Env, opts: UploadOptions) -> int:
    paths = [local_file(name) for name in opts.files]  # all checked first
    out = Output(env.ui, opts.format)
    for path in paths:
        data = uploads.upload(env.client, env.ui, path, quiet=opts.format is Format.QUIET)
        if opts.format is Format.JSON:
            out.json({**data, "file": str(path.resolve())})
        elif opts.format is Format.HUMAN and env.ui.stdout_tty:
            out.value(f"{path}  {data['url']}")
        else:
            out.value(str(data["url"]))
    return 0


def command(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Argument(help="JPEG, PNG, WebP or GIF files, 10 MB at most.", metavar="FILE..."),
    ],
    json: Annotated[
        bool, json_option("One JSON document per file on stdout (its URL and more).")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Upload local images and print their URLs, for use with `generate -i URL`.

    \b
    Examples:
      kling upload photo.jpg
      kling generate "<<<image_1>>> smiles" -i "$(kling upload photo.jpg)"
      kling upload --json *.png | jq -r .url
    """
    raise typer.Exit(run_upload(env_of(ctx), UploadOptions(files, choose(json, quiet))))
