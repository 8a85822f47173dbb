"""The console script's entry point: answers --version, and a TAB on a task id, before importing
anything heavy."""

from __future__ import annotations

import os
import sys

from . import __version__


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(f"kling {__version__}")
        return
    from .quick_completion import COMPLETE_VAR, quick

    if os.environ.get(COMPLETE_VAR):  # a TAB: the shell waits for us, keystroke by keystroke
        code = quick(os.environ)
        if code is not None:
            raise SystemExit(code)
    from .app import app

    app(args=args, prog_name="kling")


if __name__ == "__main__":
    main()
