"""The sandbox's lifecycle: `Sandbox` (its two listeners, start and stop) and `run()`.

The pieces live beside it: `httpd` (listeners, request parsing, the request log), `routes`
(the answers), `state` (tasks, uploads, balance), `rules` (what a generation request must be),
`config` and `defaults`. The names other code
and tests import are all here too. Standard library only, so the simulator stays light and
independent of the CLI's own stack.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from . import faults as fk
from . import routes
from .config import SandboxConfig
from .defaults import FOREGROUND_LOG_SIZE
from .httpd import BadBody, Exchange, FormPart, Listener, RequestLog, RequestRecord, parse_multipart
from .prices import DEFAULT_BALANCE
from .routes import clip as _clip
from .state import DELETE, SandboxState, Task

__all__ = [
    "DEFAULT_BALANCE",
    "DELETE",
    "FormPart",
    "RequestLog",
    "RequestRecord",
    "Sandbox",
    "SandboxConfig",
    "_clip",
    "parse_multipart",
    "run",
]

STOP_GRACE = 2.0


class Sandbox:
    """The simulator: an API listener and a video-host listener, each on its own port.

    The sockets are bound on construction (so `base_url` is known at once); `start()` serves
    them on background threads, `stop()` closes everything. Also a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SandboxConfig | None = None,
        *,
        file_port: int = 0,
    ) -> None:
        self.config = config or SandboxConfig()
        self._faults = fk.FaultInjector(
            self.config.faults, self.config.fault_kinds, self.config.seed
        )
        self._log = RequestLog(self.config.log_size)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self._api = Listener((host, port), "api", self._serve)
        try:
            self._files = Listener((host, file_port), "files", self._serve)
        except BaseException:
            self._api.server_close()
            raise
        self.state = SandboxState(
            self.file_base_url,
            queue_seconds=self.config.queue_seconds,
            run_seconds=self.config.run_seconds,
            clock=self.config.clock,
            wall_clock=self.config.wall_clock,
        )

    @property
    def base_url(self) -> str:
        return self._api.url

    @property
    def file_base_url(self) -> str:
        return self._files.url

    # -- running -------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._threads:
            return self
        if self._stopped:
            raise RuntimeError("this sandbox was stopped; make a new one")
        for server in (self._api, self._files):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"kling-sandbox-{server.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()  # ends `slow` faults' waits
        if self._threads:
            # Both at once: each shutdown() waits up to one poll interval for its loop.
            stopper = threading.Thread(target=self._files.shutdown, daemon=True)
            stopper.start()
            self._api.shutdown()
            stopper.join()
            for thread in self._threads:
                thread.join()
        for server in (self._api, self._files):
            server.close_connections(STOP_GRACE)
            server.server_close()

    def serve_forever(self, on_ready: Callable[[Sandbox], None] | None = None) -> None:
        """Serve in the foreground until KeyboardInterrupt (or `stop()` from elsewhere)."""
        self.start()
        try:
            if on_ready is not None:
                on_ready(self)
            # Short waits: the main thread must stay responsive to Ctrl-C.
            while not self._stopping.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests look at --------------------------------------------------------------------

    @property
    def log(self) -> RequestLog:
        """The most recent requests (`config.log_size` of them), oldest first."""
        return self._log

    @property
    def request_counts(self) -> Counter[str]:
        """Every request so far by endpoint ("GET /v1/videos/generations/{id}"), however many
        the log has dropped; `.total()` is all of them."""
        return self._log.counts

    @property
    def tasks_created(self) -> int:
        return self.state.tasks_created

    @property
    def faults_injected(self) -> Counter[str]:
        return self._faults.counts()

    def clip_bytes(self, aspect_ratio: str = "16:9") -> bytes:
        return routes.clip(aspect_ratio)

    def set_task(self, task_id: str, **fields: Any) -> None:
        """Override fields of a task's answer (e.g. status="weird"); `DELETE` removes one."""
        self.state.set_task(task_id, **fields)

    def task(self, task_id: str) -> Task:
        """The stored task (prompt as stored, body as sent); KeyError for an unknown id."""
        task = self.state.get_task(task_id)
        if task is None:
            raise KeyError(task_id)
        return task

    def tasks(self) -> list[Task]:
        """Every task created so far, in creation order (tests count them per prompt)."""
        return self.state.all_tasks()

    def tasks_with_business_id(self, business_id: str) -> list[Task]:
        """The tasks made with this `client_business_id`, oldest first: more than one when a
        send was repeated (the sandbox, like the service, does not refuse a second)."""
        return self.state.tasks_with_business_id(business_id)

    def business_id_counts(self) -> Counter[str]:
        """How many tasks each business id made (tasks without one left out); a soak test's
        duplicate sends are the ids counted above 1."""
        return self.state.business_id_counts()

    # -- one request ---------------------------------------------------------------------------

    def _serve(self, exchange: Exchange) -> None:
        listener, method, target = exchange.listener, exchange.command, exchange.path
        headers = exchange.logged_headers()

        def record(body: bytes, status: int | None, fault: str | None) -> None:
            entry = RequestRecord.of(listener, method, target, headers, body, status, fault)
            self._log.append(entry, routes.endpoint(listener, method, target))

        # Faults hit only requests that would otherwise be served: an API request without a
        # key, or with a revoked one, gets its 401, whatever the fault rate.
        eligible = listener == "files" or routes.key_accepted(
            self.config, exchange.headers.get("Authorization")
        )
        try:
            fault = self._sync_config(
                pick_fault=eligible, download=listener == "files" and method == "GET"
            )
        except ValueError as exc:  # the config was changed to something invalid
            response = routes.bad_config(exc)
            response.close = True  # the body was not read
            record(b"", response.status, None)
            exchange.send(response)
            return

        if fault == fk.DROP_BEFORE:
            exchange.drop()
            record(b"", None, fault)
            return

        try:
            body = exchange.read_body()
        except BadBody as problem:
            response = routes.bad_body(target, problem)
            response.close = True
            record(b"", response.status, fault)
            exchange.send(response)
            return

        if fault in fk.REPLACING_KINDS:
            response = routes.fault_answer(fault, self._faults)
        else:
            request = routes.Request(
                listener, method, urlsplit(target).path, exchange.headers, body
            )
            try:
                response = routes.answer(request, self.state, self.config)
            except Exception as exc:  # a sandbox bug
                response = routes.sandbox_bug(exc)

        if fault == fk.DROP_AFTER or response.drop:
            # Processed (a generation was created, unless `[lost-no-task]` asked for none), but
            # the answer never leaves.
            exchange.drop()
            record(body, None, fault)
            return
        record(body, response.status, fault)
        delay = self.config.latency + (fk.SLOW_SECONDS if fault == fk.SLOW else 0.0)
        if delay > 0:
            self._stopping.wait(delay)  # stop() cuts the wait short
        exchange.send(response, truncate=fault == fk.TRUNCATED_BODY)

    def _sync_config(self, *, pick_fault: bool, download: bool) -> str | None:
        """Apply the (live) config to the state and the fault injector; the request's fault."""
        cfg = self.config
        self.state.queue_seconds = max(0.0, cfg.queue_seconds)
        self.state.run_seconds = max(0.0, cfg.run_seconds)
        self.state.clock = cfg.clock
        self.state.wall_clock = cfg.wall_clock
        self._faults.configure(cfg.faults, cfg.fault_kinds)
        return self._faults.pick(download=download) if pick_fault else None


def run(
    host: str,
    port: int,
    config: SandboxConfig,
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve in the foreground until KeyboardInterrupt; `on_ready` runs once listening.

    Nobody reads a foreground sandbox's log: it keeps only the last few requests.
    """
    config = dataclasses.replace(config, log_size=min(config.log_size, FOREGROUND_LOG_SIZE))
    Sandbox(host, port, config).serve_forever(on_ready)
