"""kling gallery FOLDER: one page to review a folder of videos in a browser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..env import Env
from ..errors import LocalFileError, UsageError
from ..output import Format, Output, counted
from .common import QuietOpt, env_of

if TYPE_CHECKING:
    from ..gallery import Gallery


@dataclass
class GalleryOptions:
    folder: Path
    quiet: bool = False
    open: bool = False
    force: bool = False


def run_gallery(env: Env, opts: GalleryOptions) -> int:
    page, shown = write_gallery(env, opts.folder, force=opts.force)
    Output(env.ui, Format.QUIET).value(str(page))
    if not opts.quiet:
        env.ui.note(f"gallery: {describe(shown)}")
    if opts.open:
        import webbrowser

        if not webbrowser.open(page.as_uri()):
            env.ui.warn(f"no browser could be started: open {page.as_uri()} yourself")
    return 0


def write_gallery(env: Env, folder: Path, *, force: bool = False) -> tuple[Path, Gallery]:
    """FOLDER/index.html from what the folder, its sidecars and records, and the journal
    know; its absolute path, and what it shows. `batch --gallery` calls this too."""
    from .. import gallery
    from ..store.journal import Journal

    if not folder.exists():
        raise UsageError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    folder = folder.absolute()
    # The journal is read when the gathering asks: one that cannot be read is warned of, and
    # the page is made without it.
    try:
        shown = gallery.gather(folder, lambda: env.records.attempt(Journal.entries) or [])
    except OSError as exc:  # exit 8 (CLI.md): a local file could not be read
        raise LocalFileError(f"cannot read {folder}: {exc.strerror or exc}") from None
    return gallery.write_page(folder, gallery.render(shown), force=force), shown


def describe(shown: Gallery) -> str:
    videos = counted(shown.videos, "video")
    missing = shown.without_video
    if missing:
        return f"{videos}, {counted(missing, 'line')} without one"
    return videos


def command(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Argument(help="The folder of videos (as batch -o left it).", metavar="FOLDER"),
    ],
    open_page: Annotated[
        bool,
        typer.Option("--open", rich_help_panel="Output", help="Open the page in a browser."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            rich_help_panel="Output",
            help="Replace an index.html that kling did not write.",
            show_default=False,
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Write FOLDER/index.html: a page to review every video of the folder in a browser.

    One card a video: its player, and what made it where a sidecar (batch --sidecar) or
    the local journal knows: prompt, mode, duration, aspect ratio, references, task id,
    status, times; the lines of `batch --gallery` that made no video, with their error.
    The page loads nothing from the network and works opened from the disk, so the folder
    can be zipped, moved or uploaded as it is. Prints the page's path.

    \b
    Examples:
      kling gallery videos/
      kling gallery videos/ --open
      kling batch prompts.jsonl -o videos/ --gallery    # written when the run ends
    """
    env = env_of(ctx)
    opts = GalleryOptions(folder, quiet=quiet, open=open_page, force=force)
    raise typer.Exit(run_gallery(env, opts))
