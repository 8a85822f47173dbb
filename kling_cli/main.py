"""The console script's entry point: answers --version, and a TAB on a task id, before importing
anything heavy."""

from __future__ import annotations

import os
import signal
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
    from . import interrupts

    interrupts.stop_on_signals()  # SIGTERM and SIGHUP as Ctrl-C, from the very start
    try:
        from .app import app

        app(args=args, prog_name="kling")
    except KeyboardInterrupt as stop:  # a signal outside any command's own handling
        raise SystemExit(interrupts.exit_status(interrupts.signal_of(stop))) from None
    finally:
        # The run is over and its outcome said: a signal from here on, while Python shuts
        # down, would end the process by the signal instead of with the run's exit code.
        for signum in interrupts.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    main()
