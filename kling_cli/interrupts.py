"""The signals that stop kling (Ctrl-C's SIGINT; SIGTERM from a cancelled CI job, `timeout`
or `docker stop`; SIGHUP from a closed terminal), all handled as Ctrl-C is, and held where they
would lose a paid task's id.

Each raises a KeyboardInterrupt (a `Stopped` for SIGTERM and SIGHUP, which knows its signal),
so every place that cleans up after Ctrl-C cleans up after them too; the exit status is
128 + the signal's number (130, 143, 129), as a shell reports a command killed by it.

A signal can land between any two bytecodes. Between "the service answered with a task id"
and "the id is in the journal" that loses money, so those stretches hold it until they are
done (`held`); a second signal still means "now".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# What stops kling; SIGHUP is not on Windows.
SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled as Ctrl-C is."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def raised(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def signal_of(stop: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (SIGINT for a plain one)."""
    return stop.signum if isinstance(stop, Stopped) else int(signal.SIGINT)


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or Stopped) that `exc` was raised in handling, if any: typer
    turns one into `Exit(130)`, and so into a SystemExit."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def exit_status(signum: int) -> int:
    return 128 + signum


def stop_on_signals() -> None:
    """From now on SIGTERM and SIGHUP raise as Ctrl-C does (the main thread's handlers)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signum)

    for signum in SIGNALS:
        if signum != signal.SIGINT:
            signal.signal(signum, stop)


class Gate:
    """Where a signal may land. Closed (the default): it is held and raised at the next
    `check()` or `opened()`. Open: it raises at once. A second signal always raises at once."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self._open = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.pending.append(signum)
        if self._open or len(self.pending) > 1:
            raise raised(signum)

    def check(self) -> None:
        """Raise a held signal now that it is safe."""
        if self.pending:
            raise raised(self.pending[0])

    @contextmanager
    def opened(self) -> Iterator[None]:
        """A stretch where nothing is half-done (waiting, sleeping): a signal raises at once."""
        self.check()
        self._open = True
        try:
            yield
        finally:
            self._open = False


@contextmanager
def held() -> Iterator[Gate]:
    """A closed Gate for the block (outside the main thread, where signals never arrive, a
    gate that never sees one)."""
    gate = Gate()
    if threading.current_thread() is not threading.main_thread():
        yield gate
        return
    previous = {signum: signal.signal(signum, gate._on_signal) for signum in SIGNALS}
    try:
        yield gate
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
