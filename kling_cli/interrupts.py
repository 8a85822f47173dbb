"""Ctrl-C held where it would lose a paid task's id, and let through where it is harmless.

A KeyboardInterrupt can land between any two bytecodes. Between "the service answered with a
task id" and "the id is in the journal" that loses money, so those stretches hold a Ctrl-C
until they are done; a second Ctrl-C still means "now".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    """Where a Ctrl-C may land. Closed (the default): it is held and raised at the next
    `check()` or `opened()`. Open: it raises at once. A second Ctrl-C always raises at once."""

    def __init__(self) -> None:
        self.pending = 0
        self._open = False

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.pending += 1
        if self._open or self.pending > 1:
            raise KeyboardInterrupt

    def check(self) -> None:
        """Raise a held Ctrl-C now that it is safe."""
        if self.pending:
            raise KeyboardInterrupt

    @contextmanager
    def opened(self) -> Iterator[None]:
        """A stretch where nothing is half-done (waiting, sleeping): a Ctrl-C raises at once."""
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
    previous = signal.signal(signal.SIGINT, gate._on_sigint)
    try:
        yield gate
    finally:
        signal.signal(signal.SIGINT, previous)
