"""Ui: what a command talks to the user through. The streams and whether each is a terminal,
stdin for a `-` argument, the progress mode, colour and the locale's manners, and the messages
on stderr (notes, warnings, errors, JSON events, --verbose's trace). Decided once, when the
command starts (`Ui.system`); `Ui.test()` gives one over buffers, every TTY flag false.

Every line it writes to stderr goes through `printable`: text from users or the service
(prompts, file names, error messages) can never move the cursor, set a colour or forge a line.
While a live display is drawn on stderr, every line goes out of its way (`Screen`).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from .errors import KlingError, LocalFileError, UsageError
from .text import printable

if TYPE_CHECKING:
    from rich.console import Console

PROGRESS_MODES = ("auto", "live", "plain", "json", "off")


def progress_choice(flag: str | None, environ: Mapping[str, str]) -> str:
    """The progress mode asked for: --progress, else KLING_PROGRESS, else auto."""
    return (flag or environ.get("KLING_PROGRESS") or "auto").strip().lower()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _AsciiStream:
    """A stream that rich sees as ASCII-only, so it draws bars and boxes with ASCII."""

    encoding = "ascii"

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.encode("ascii", "replace").decode("ascii"))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()


class Stdout:
    """The process's stdout as results are written to it (text, or bytes through `buffer`). A
    write it cannot take (a full disk, an I/O error, or no stdout at all: kling started with it
    closed, `>&-`) is a LocalFileError, exit 8; a reader that went away stays a BrokenPipeError,
    the app's quiet 141. Anything else is the stream's own."""

    def __init__(self, stream: Any):
        self._stream = stream  # None: started with stdout closed

    def write(self, data: Any) -> int:
        if self._stream is None:
            raise LocalFileError(
                "cannot write to stdout: it is closed",
                hint="send it somewhere instead: > FILE, or > /dev/null",
            )
        try:
            return int(self._stream.write(data))
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise cannot_write(exc) from None

    def flush(self) -> None:
        if self._stream is None:
            return  # nothing was written to it: nothing to flush
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise cannot_write(exc) from None

    @property
    def buffer(self) -> Stdout | None:
        """Bytes (a video, `download -o -`), with the same errors; None where the stream takes
        text only (a test's buffer)."""
        if self._stream is None:
            return self
        buffer = getattr(self._stream, "buffer", None)
        return None if buffer is None else Stdout(buffer)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding ...: the stream's
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def cannot_write(exc: OSError) -> LocalFileError:
    """stdout refused a write: a one-line error, exit 8. What is still buffered for it is
    dropped, so the interpreter's last flush does not fail again."""
    to_devnull(sys.stdout)
    return LocalFileError(f"cannot write to stdout: {exc.strerror or exc}")


def to_devnull(stream: Any) -> None:
    """Point a standard stream that can no longer be written at devnull, so the interpreter's
    final flush does not raise again and print "Exception ignored ... " on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError, AttributeError):  # no real descriptor (a test's buffer), None
        pass
    finally:
        os.close(devnull)


class Screen:
    """The terminal a live display shares with the messages on stderr. While one is drawn,
    `above` is its way to write without it: the display is taken down, the line written and
    the display drawn again below. A line written over it would land inside the area the next
    redraw overwrites (glued to its last row, then wiped). Every copy of a Ui shares one."""

    def __init__(self) -> None:
        self.above: Callable[[Callable[[], None]], None] | None = None


@dataclass(frozen=True)
class Ui:
    stdout: TextIO
    stderr: TextIO
    stdout_tty: bool = False
    stderr_tty: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    stdin: BinaryIO | None = None  # bytes: a prompt or batch file piped in is checked as UTF-8
    stdin_tty: bool = False
    progress: str = "auto"  # auto, live, plain, json or off (--progress, --no-progress)
    verbose: bool = False
    json_errors: bool = False  # --json: errors too are JSON documents
    screen: Screen = field(default_factory=Screen, compare=False, repr=False)

    @classmethod
    def system(
        cls,
        *,
        progress: str | None = None,
        no_progress: bool = False,
        verbose: bool = False,
        json_errors: bool = False,
    ) -> Ui:
        """The process's own streams and environment. `progress`: --progress (else
        KLING_PROGRESS, else auto)."""
        mode = progress_choice(progress, os.environ)
        if mode not in PROGRESS_MODES:
            where = "--progress" if progress else "KLING_PROGRESS"
            raise UsageError(f"{where} must be one of {', '.join(PROGRESS_MODES)}")
        stdin = getattr(sys.stdin, "buffer", None)
        return cls(
            stdout=cast(TextIO, Stdout(sys.stdout)),
            stderr=sys.stderr,
            stdout_tty=_isatty(sys.stdout),
            stderr_tty=_isatty(sys.stderr),
            environ=os.environ,
            stdin=stdin,
            stdin_tty=stdin is not None and _isatty(sys.stdin),
            progress="off" if no_progress else mode,
            verbose=verbose,
            json_errors=json_errors,
        )

    @classmethod
    def test(
        cls, environ: Mapping[str, str] | None = None, stdin: bytes | None = None, **kw: Any
    ) -> Ui:
        """Buffers for streams (stdin holds `stdin`, or is absent), every TTY flag false."""
        return cls(
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            environ=dict(environ or {}),
            stdin=io.BytesIO(stdin) if stdin is not None else None,
            **kw,
        )

    # --- stdin -------------------------------------------------------------------------------

    def piped_stdin(self, what: str) -> BinaryIO:
        """stdin for a `-` argument: refused when nothing is piped (a terminal would wait)."""
        if self.stdin is None or self.stdin_tty:
            raise UsageError(f"{what} is read from stdin, but nothing is piped to it")
        return self.stdin

    def read_stdin(self, what: str, *, line: bool = False) -> str:
        """What was piped in for a `-` argument (or its first line), as text: refused when it
        is not UTF-8."""
        stdin = self.piped_stdin(what)
        data = stdin.readline() if line else stdin.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{what} on stdin is not UTF-8 text ({exc.reason})") from None

    # --- stdout for bytes ----------------------------------------------------------------------

    def binary_stdout(self) -> BinaryIO:
        """stdout as bytes (a video, for `download -o -`): the buffer under the text stream,
        what was written as text flushed first."""
        self.stdout.flush()
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is None:
            raise UsageError("stdout cannot take bytes here")
        return buffer  # type: ignore[no-any-return]  # a text stream's buffer is binary

    # --- messages on stderr ------------------------------------------------------------------

    def _say(self, text: str, label: str = "") -> None:
        """`kling: LABEL: TEXT`, the label coloured where stderr takes colour."""
        if label:
            colour = LABEL_COLOURS[label] if self.stderr_color else ""
            label = f"{colour}{label}:{RESET if colour else ''} "
        self._write(f"kling: {label}{printable(text)}\n")

    def _write(self, text: str) -> None:
        """Lines on stderr, in one write (workers speak too), out of a live display's way."""

        def write() -> None:
            self.stderr.write(text)
            self.stderr.flush()

        above = self.screen.above
        if above is None:
            write()
        else:
            above(write)

    def note(self, message: str) -> None:
        if not self.events:  # --progress json: stderr carries events and errors only
            self._say(message)

    def warn(self, message: str) -> None:
        if not self.events:
            self._say(message, "warning")

    def event(self, name: str, **fields: Any) -> None:
        """One line of --progress json (CLI.md "Progress for machines")."""
        event = {"event": name, "time": round(time.time(), 3), **fields}
        self._write(json_line(event) + "\n")

    def error(self, exc: KlingError) -> None:
        """An error on stderr: one line and a hint, a line each of its details; with --json one
        JSON document; with --progress json an `error` event carrying that document."""
        if self.events:
            self.event("error", error=exc.document())
            return
        if self.json_errors:
            self._write(json_line({"error": exc.document()}) + "\n")
            return
        where = f"{exc.task_id}: " if exc.task_id and exc.task_id not in exc.message else ""
        self._say(f"{where}{exc.message}", "error")
        for detail in exc.details:
            self._say(f"  {detail}")
        if exc.hint:
            self._say(exc.hint, "hint")

    def trace(self, line: str) -> None:
        if self.verbose:
            self._say(line)

    @property
    def events(self) -> bool:
        """--progress json: every progress event a JSON line on stderr, and nothing else there
        but errors (as `error` events)."""
        return self.progress == "json"

    def progress_mode(self, quiet: bool = False) -> str:
        """'live' (rich, on a terminal), 'plain' (a line per change, for CI logs), 'json'
        (events for programs) or 'off'. `auto` is live on a terminal and plain elsewhere, and
        off with -q (an explicit --progress holds with -q too)."""
        if self.progress != "auto":
            return self.progress
        if quiet:
            return "off"
        if self.stderr_tty and self.environ.get("TERM") != "dumb":
            return "live"
        return "plain"

    # --- terminal manners ----------------------------------------------------------------------

    @property
    def ascii_only(self) -> bool:
        """A C/POSIX or non-UTF-8 locale: no box-drawing or bar glyphs, plain ASCII."""
        for name in ("LC_ALL", "LC_CTYPE", "LANG"):
            value = self.environ.get(name)
            if value:
                return "utf-8" not in value.lower().replace("utf8", "utf-8")
        return False

    @property
    def color(self) -> bool:
        """Colour on stdout: only on a terminal, and never with NO_COLOR (https://no-color.org).
        FORCE_COLOR colours stderr only: piped stdout must stay parseable."""
        return (
            self.stdout_tty
            and not self.environ.get("NO_COLOR")
            and self.environ.get("TERM") != "dumb"
        )

    @property
    def stderr_color(self) -> bool:
        """Colour on stderr (the labels of errors, warnings and hints): on a terminal, or
        wherever FORCE_COLOR asks for it (a CI log that shows colour, stderr piped); never
        with NO_COLOR."""
        if self.environ.get("NO_COLOR"):
            return False
        if self.environ.get("FORCE_COLOR"):
            return True
        return self.stderr_tty and self.environ.get("TERM") != "dumb"

    def rich_console(self, stream: TextIO) -> Console:
        """A rich Console on one of our streams, as on a terminal (it is drawn on only there),
        that honours NO_COLOR, FORCE_COLOR, TERM and the locale of this run's environment."""
        from rich.console import Console

        return Console(
            file=_AsciiStream(stream) if self.ascii_only else stream,  # type: ignore[arg-type]  # rich needs only write, flush, isatty, encoding
            force_terminal=True,
            _environ=dict(self.environ),
        )


LABEL_COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "hint": "\x1b[36m"}  # SGR
RESET = "\x1b[0m"

# C1 controls: valid inside a JSON string, but some terminals obey them. Written escaped.
C1 = {code: f"\\u{code:04x}" for code in range(0x80, 0xA0)}


def json_line(document: Any) -> str:
    """A JSON document on one line, text kept as UTF-8 (C1 controls escaped)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).translate(C1)
