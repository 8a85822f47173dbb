"""The console script's entry point: answers --version before importing anything heavy."""

from __future__ import annotations

import sys

from . import __version__


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(f"kling {__version__}")
        return
    from .app import app

    app(args=args, prog_name="kling")


if __name__ == "__main__":
    main()
