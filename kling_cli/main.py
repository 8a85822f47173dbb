"""The console script's entry point: answers --version, and the completion scripts' hidden
`kling __complete-ids`, before importing anything heavy."""

from __future__ import annotations

import sys
from collections.abc import Collection

from . import __version__

# `kling __complete-ids PREFIX [GIVEN...]`: what the scripts in completions/ run for a TAB on a
# task id of wait, status or download. The shell waits for it keystroke by keystroke, and
# importing typer, rich and requests would cost it ~260 ms: it reads the journal alone.
COMPLETE_IDS = "__complete-ids"
MAX_TASK_IDS = 50  # a screenful: more is noise, and each one is a line the shell must sort
LOCK_WAIT = 1.0  # seconds a TAB waits for a locked journal before it offers nothing


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(f"kling {__version__}")
        return
    if args[:1] == [COMPLETE_IDS]:
        complete_ids(args[1:])
        return
    import signal  # here, not above: a TAB's answer does without it

    from . import interrupts

    interrupts.stop_on_signals()  # SIGTERM and SIGHUP as Ctrl-C, from the very start
    try:
        from .app import app

        app(args=args, prog_name="kling")
    except KeyboardInterrupt as stop:  # a signal outside any command's own handling
        raise SystemExit(interrupts.exit_status(interrupts.signal_of(stop))) from None
    except SystemExit as ended:
        # ... or one that typer caught first: it ends a KeyboardInterrupt with 130, whatever
        # the signal behind it (a SIGTERM while batch asks for the balance, say).
        behind = interrupts.interrupt_behind(ended)
        if behind is None or ended.code != interrupts.exit_status(signal.SIGINT):
            raise
        raise SystemExit(interrupts.exit_status(interrupts.signal_of(behind))) from None
    finally:
        # The run is over and its outcome said: a signal from here on, while Python shuts
        # down, would end the process by the signal instead of with the run's exit code.
        for signum in interrupts.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def complete_ids(args: list[str]) -> None:
    """`kling __complete-ids PREFIX [GIVEN...]`: the journal's task ids that start with
    PREFIX, newest first, leaving out the GIVEN ones, one a line as `ID<TAB>STATUS` (`ID`
    alone when the status is not a plain word). Nothing, and exit 0, on any failure."""
    prefix, given = (args[0], args[1:]) if args else ("", [])
    out = sys.stdout
    if out is None:  # started with no stdout: nobody to tell
        return
    try:
        found = journal_task_ids(prefix, given)
        out.write("".join(f"{i}\t{status}\n" if status else f"{i}\n" for i, status in found))
        out.flush()
    except (OSError, ValueError):  # the shell stopped listening: nothing to tell it
        pass
    except KeyboardInterrupt:  # the user gave up on the TAB
        pass


def journal_task_ids(prefix: str, given: Collection[str]) -> list[tuple[str, str]]:
    """The journal's task ids for a TAB (store/ids.py), from the journal as it is: never
    created (nor its folder), and none on any failure (no journal, a damaged, locked or
    unreadable one). The app's own completion (kling_cli.completion.task_ids) asks here too."""
    from .paths import JOURNAL_FILE, data_dir
    from .store.ids import task_ids
    from .store.sqlite import JournalError, Store

    try:
        journal = Store.existing(data_dir() / JOURNAL_FILE, timeout=LOCK_WAIT)
    except (JournalError, RuntimeError):  # RuntimeError: KLING_HOME=~nobody/...
        return []
    try:
        return task_ids(journal, prefix, given, MAX_TASK_IDS)
    except JournalError:
        return []
    finally:
        journal.close()


if __name__ == "__main__":
    main()
