"""Env: what a command works with, made once in the root callback. Its Ui (context.py), the
settings (resolved on first use, so `kling config` can repair a broken file), and, made
lazily, the API client, the journal and the sandbox; the clock. The engine, uploads and
downloads are handed the pieces they use, not the Env.

`Env.test()` builds one over a test Ui, on a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config, paths
from .clock import FakeClock
from .context import Ui
from .errors import MissingKeyError

if TYPE_CHECKING:
    import tempfile

    from .api.client import Client
    from .sandbox.server import Sandbox
    from .store.journal import Journal
    from .store.records import Records

SANDBOX_KEY = "sandbox-key"  # throwaway: the sandbox accepts any bearer key


@dataclass
class Env:
    ui: Ui
    flags: Mapping[str, Any] = field(default_factory=dict)  # global flags that are config keys
    use_sandbox: bool = False
    profile: str | None = None  # --profile / KLING_PROFILE: a named set of config keys
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _settings: dict[str, config.Setting] | None = None
    _client: Client | None = None
    _journal: Journal | None = None
    _records: Records | None = None
    _sandbox: Sandbox | None = None
    _scratch: tempfile.TemporaryDirectory[str] | None = None  # the --sandbox journal's folder

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
        json_errors: bool = False,
    ) -> Env:
        """The Env of one run, from the global options and their environment variables: every
        run-wide choice is made here, once (the output format is each command's, --json)."""
        ui = Ui.system(
            progress=progress, no_progress=no_progress, verbose=verbose, json_errors=json_errors
        )
        environ = ui.environ
        return cls(
            ui,
            flags={"api_key": api_key, "base_url": base_url},
            use_sandbox=sandbox or environ.get("KLING_SANDBOX", "") not in ("", "0", "false"),
            profile=profile or environ.get("KLING_PROFILE") or None,
        )

    @classmethod
    def test(
        cls,
        environ: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        clock: FakeClock | None = None,
        **kw: Any,
    ) -> Env:
        """A test Ui (buffers, no terminal) on a fake clock (a fresh one unless given: pass
        the sandbox's to share its time)."""
        clock = clock or FakeClock()
        return cls(Ui.test(environ, stdin), clock=clock.now, sleep=clock.sleep, **kw)

    @property
    def environ(self) -> Mapping[str, str]:
        return self.ui.environ

    # --- settings ----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return config.config_path(self.environ)

    @property
    def settings(self) -> dict[str, config.Setting]:
        if self._settings is None:
            path = self.config_path
            values = config.load_values(path, config.check_profile(self.profile), self.ui.warn)
            if values.get("api_key") and config.readable_by_others(path):
                self.ui.warn(
                    f"{path} holds the key and can be read by other users: run `chmod 600 {path}`"
                )
            self._settings = config.resolve(self.flags, self.environ, values)
        return self._settings

    def setting(self, name: str) -> Any:
        return self.settings[name].value

    def set_in(self, name: str) -> str | None:
        """Where the user set a setting's value, in words, for an error about it: its
        environment variable or the config file (None: a flag, or the default)."""
        source = self.settings[name].source
        if source == "env":
            return config.key(name).env_var
        return "the config file" if source == "file" else None

    # --- what a command works with -----------------------------------------------------------

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
            self.ui.note(
                f"using the built-in sandbox at {self._sandbox.base_url} (no key, no credits)"
            )
        return self._sandbox

    @property
    def client(self) -> Client:
        if self._client is None:
            from .api.client import Client

            key = SANDBOX_KEY if self.use_sandbox else self.setting("api_key")
            if not key:
                raise MissingKeyError(
                    "no API key",
                    hint="set one with `kling config set api_key` (it asks for it), "
                    "KLING_API_KEY or --api-key; or try the sandbox: kling --sandbox ...",
                )
            self._client = Client(
                self.base_url,
                key,
                trace=self.ui.trace if self.ui.verbose else None,
                notice=self.ui.note,
                sleep=self.sleep,
                clock=self.clock,
            )
        return self._client

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            from .store.journal import JOURNAL_FILE, Journal

            folder = paths.data_dir(self.environ)
            if self.use_sandbox:
                # The in-process sandbox and its tasks end with this command: its journal too,
                # so that `kling list`, `kling wait` and completion never offer its dead ids.
                import tempfile

                self._scratch = tempfile.TemporaryDirectory(prefix="kling-sandbox-")
                folder = Path(self._scratch.name)
            self._journal = Journal(folder / JOURNAL_FILE)
        return self._journal

    @property
    def records(self) -> Records:
        """The journal as the record kept beside the work (its failures warned of, once)."""
        if self._records is None:
            from .store.records import Records

            self._records = Records(lambda: self.journal, lambda: self.base_url, self.ui)
        return self._records

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._journal is not None:
            self._journal.close()
        if self._scratch is not None:
            self._scratch.cleanup()
        if self._sandbox is not None:
            self._sandbox.stop()
