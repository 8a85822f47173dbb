"""Env: the one object that owns the outside world for a command run.

Streams and their TTY flags, the progress choice, settings (resolved lazily, so `kling config`
can repair a broken file), the API client, the journal and the clock. Made once in the root
callback; `Env.test()` builds one over buffers for tests.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, TypeVar

from . import config
from .clock import FakeClock
from .errors import KlingError, MissingKeyError, UsageError

if TYPE_CHECKING:
    import tempfile

    from rich.console import Console

    from .client import Client
    from .journal import Journal
    from .sandbox.server import Sandbox
    from .tasks import TaskView

T = TypeVar("T")
PROGRESS_MODES = ("auto", "live", "plain", "json", "off")
SANDBOX_KEY = "sandbox-key"  # throwaway: the sandbox accepts any bearer key


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


def progress_choice(flag: str | None, environ: Mapping[str, str]) -> str:
    """The progress mode asked for: --progress, else KLING_PROGRESS, else auto (checked
    against PROGRESS_MODES by Env.for_run)."""
    return (flag or environ.get("KLING_PROGRESS") or "auto").strip().lower()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Env:
    stdout: TextIO
    stderr: TextIO
    stdout_tty: bool
    stderr_tty: bool
    environ: Mapping[str, str]
    stdin: BinaryIO | None = None  # bytes: a prompt or batch file piped in is checked as UTF-8
    stdin_tty: bool = False
    flags: dict[str, Any] = field(default_factory=dict)  # global flags that are config keys
    verbose: bool = False
    no_progress: bool = False
    progress: str = "auto"  # --progress / KLING_PROGRESS: auto, live, plain, json or off
    use_sandbox: bool = False
    profile: str | None = None  # --profile / KLING_PROFILE: a named set of config keys
    http_pool_size: int = 10  # requests a command keeps in flight at once (batch --parallel)
    json_errors: bool = False  # --json: errors too become JSON documents (on stderr)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _settings: dict[str, config.Setting] | None = None
    _client: Client | None = None
    _journal: Journal | None = None
    _sandbox: Sandbox | None = None
    _journal_warned: bool = False
    _scratch: tempfile.TemporaryDirectory[str] | None = None  # the --sandbox journal's folder

    @classmethod
    def system(cls, **kw: Any) -> Env:
        stdin = getattr(sys.stdin, "buffer", None)
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdout_tty=_isatty(sys.stdout),
            stderr_tty=_isatty(sys.stderr),
            environ=os.environ,
            stdin=stdin,
            stdin_tty=stdin is not None and _isatty(sys.stdin),
            **kw,
        )

    @classmethod
    def for_run(
        cls,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        profile: str | None = None,
        sandbox: bool = False,
        verbose: bool = False,
        progress: str | None = None,
        no_progress: bool = False,
        clock: FakeClock | None = None,
    ) -> Env:
        """The Env of one run, from the global options and their environment variables: every
        run-wide choice is made here, once (the output format is each command's, --json).
        `clock`: a test's fake one (the real clock otherwise)."""
        env = cls.system(
            flags={"api_key": api_key, "base_url": base_url},
            verbose=verbose,
            no_progress=no_progress,
            **({"clock": clock.now, "sleep": clock.sleep} if clock else {}),
        )
        environ = env.environ
        env.profile = profile or environ.get("KLING_PROFILE") or None
        env.use_sandbox = sandbox or environ.get("KLING_SANDBOX", "") not in ("", "0", "false")
        mode = progress_choice(progress, environ)
        if mode not in PROGRESS_MODES:
            where = "--progress" if progress else "KLING_PROGRESS"
            raise UsageError(f"{where} must be one of {', '.join(PROGRESS_MODES)}")
        env.progress = mode
        return env

    @classmethod
    def test(
        cls,
        environ: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        clock: FakeClock | None = None,
        **kw: Any,
    ) -> Env:
        """Buffers for streams (stdin holds `stdin`, or is absent), every TTY flag false, and
        a fake clock (a fresh one unless given: pass the sandbox's to share its time)."""
        clock = clock or FakeClock()
        return cls(
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            stdout_tty=False,
            stderr_tty=False,
            environ=dict(environ or {}),
            stdin=io.BytesIO(stdin) if stdin is not None else None,
            clock=clock.now,
            sleep=clock.sleep,
            **kw,
        )

    # --- stdin -------------------------------------------------------------------------------

    def piped_stdin(self, what: str) -> BinaryIO:
        """stdin for a `-` argument: refused when nothing is piped (a terminal would wait
        for typing)."""
        if self.stdin is None or self.stdin_tty:
            raise UsageError(f"{what} is read from stdin, but nothing is piped to it")
        return self.stdin

    def read_stdin(self, what: str, *, line: bool = False) -> str:
        """What was piped in for a `-` argument (or one line of it), as text: refused when
        nothing is piped (a terminal would wait for typing) or it is not UTF-8."""
        stdin = self.piped_stdin(what)
        data = stdin.readline() if line else stdin.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{what} on stdin is not UTF-8 text ({exc.reason})") from None

    # --- messages on stderr ------------------------------------------------------------------

    def note(self, message: str) -> None:
        if not self.events:  # --progress json: stderr carries events and errors only
            print(f"kling: {message}", file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        if not self.events:
            print(f"kling: warning: {message}", file=self.stderr, flush=True)

    def event(self, name: str, **fields: Any) -> None:
        """One line of --progress json (CLI.md "Progress for machines")."""
        event = {"event": name, "time": round(time.time(), 3), **fields}
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        self.stderr.write(line + "\n")  # one write: worker threads report downloads too
        self.stderr.flush()

    def error(self, exc: KlingError) -> None:
        """An error on stderr: one line and a hint; with --json one JSON document; with
        --progress json an `error` event carrying that document."""
        if self.events:
            self.event("error", error=exc.document())
            return
        if self.json_errors:
            print(json.dumps({"error": exc.document()}), file=self.stderr, flush=True)
            return
        where = f"{exc.task_id}: " if exc.task_id and exc.task_id not in exc.message else ""
        self.note(f"error: {where}{exc.message}")
        if exc.hint:
            self.note(f"hint: {exc.hint}")

    def trace(self, line: str) -> None:
        if self.verbose:
            print(f"kling: {line}", file=self.stderr, flush=True)

    @property
    def events(self) -> bool:
        """--progress json: every progress event a JSON line on stderr, and nothing else there
        but errors (as `error` events)."""
        return self.progress == "json" and not self.no_progress

    def progress_mode(self, quiet: bool = False) -> str:
        """'live' (rich, on a terminal), 'plain' (a line per change, for CI logs), 'json'
        (events for programs) or 'off'. --progress decides; `auto` is live on a terminal and
        plain elsewhere, and off with -q (an explicit --progress holds with -q too)."""
        if self.no_progress:
            return "off"
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

    def rich_console(self, stream: TextIO, *, terminal: bool) -> Console:
        """A rich Console on one of our streams that honours NO_COLOR, FORCE_COLOR, TERM and
        the locale of this run's environment."""
        from rich.console import Console

        return Console(
            file=_AsciiStream(stream) if self.ascii_only else stream,  # type: ignore[arg-type]  # rich needs only write, flush, isatty, encoding
            force_terminal=True if terminal else None,
            _environ=dict(self.environ),
        )

    # --- settings ----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return config.config_path(self.environ)

    @property
    def settings(self) -> dict[str, config.Setting]:
        if self._settings is None:
            path = self.config_path
            if path.exists() and config.readable_by_others(path):
                self.warn(f"{path} can be read by other users: run `chmod 600 {path}`")
            values = config.load_values(path, config.check_profile(self.profile), self.warn)
            self._settings = config.resolve(self.flags, self.environ, values)
        return self._settings

    def setting(self, name: str) -> Any:
        return self.settings[name].value

    # --- services ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.use_sandbox:
            return self.sandbox.base_url
        return str(self.setting("base_url"))

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            from .sandbox.server import Sandbox, SandboxConfig

            # sandbox.defaults.IN_PROCESS, on this run's clock: a test's fake clock runs both
            self._sandbox = Sandbox(config=SandboxConfig(clock=self.clock))
            self._sandbox.start()
            self.note(
                f"using the built-in sandbox at {self._sandbox.base_url} (no key, no credits)"
            )
        return self._sandbox

    @property
    def client(self) -> Client:
        if self._client is None:
            from .client import Client

            if self.use_sandbox:
                key: str | None = SANDBOX_KEY
            else:
                key = self.setting("api_key")
                if not key:
                    raise MissingKeyError(
                        "no API key",
                        hint="set one with `kling config set api_key` (it asks for it), "
                        "KLING_API_KEY or --api-key; or try the sandbox: kling --sandbox ...",
                    )
            # No trace without --verbose: a trace turns on urllib3's debug log on every request.
            trace = self.trace if self.verbose else None
            self._client = Client(
                self.base_url,
                key,
                trace=trace,
                notice=self.note,
                pool_size=self.http_pool_size,
                sleep=self.sleep,
            )
        return self._client

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            from .journal import JOURNAL_FILE, Journal

            folder = config.data_dir(self.environ)
            if self.use_sandbox:
                # The in-process sandbox and its tasks end with this command: its journal too,
                # so that `kling list`, `kling wait` and completion never offer its dead ids.
                import tempfile

                self._scratch = tempfile.TemporaryDirectory(prefix="kling-sandbox-")
                folder = Path(self._scratch.name)
            self._journal = Journal(folder / JOURNAL_FILE)
        return self._journal

    def record_submitted(
        self, task: TaskView, body: dict[str, Any], batch_key: str | None = None
    ) -> bool:
        """Record a new task (and the batch line that made it); False when the journal could
        not take it."""

        def record(journal: Journal) -> bool:
            journal.record_submitted(task, self.base_url, body, batch_key)
            return True

        return self.try_journal(record) is True

    def record_attempt(self, body: dict[str, Any], reason: str) -> None:
        """A generation request that may have made a task: listed as `uncertain`."""
        self.try_journal(lambda j: j.record_attempt(self.base_url, body, reason))

    def record_update(self, task: TaskView) -> None:
        self.try_journal(lambda j: j.update(task))

    def record_file(self, task_id: str, path: Path) -> None:
        self.try_journal(lambda j: j.add_file(task_id, path))

    @contextmanager
    def journal_group(self) -> Iterator[None]:
        """The journal writes made inside share one transaction and one sync (Journal.group);
        a journal that fails is warned of, as by try_journal."""
        from .journal import JournalError

        try:
            with self.journal.group():
                yield
        except JournalError as exc:
            self._journal_failed(exc)

    def try_journal(self, action: Callable[[Journal], T]) -> T | None:
        """Use the journal; if it fails, warn (once) and go on with None: the journal is a
        record, and a paid task must not be abandoned because the record failed."""
        from .journal import JournalError

        try:
            return action(self.journal)
        except JournalError as exc:
            self._journal_failed(exc)
            return None

    def _journal_failed(self, exc: KlingError) -> None:
        if not self._journal_warned:
            self.warn(exc.message)
            if exc.hint:
                self.note(f"hint: {exc.hint}")
            self._journal_warned = True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._journal is not None:
            self.try_journal(lambda journal: journal.flush())
            self._journal.close()
        if self._scratch is not None:
            self._scratch.cleanup()
        if self._sandbox is not None:
            self._sandbox.stop()
