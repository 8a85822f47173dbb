"""Where the engine's requests run: on the calling thread when one at a time is enough, else
on worker threads that never hold the process open.

concurrent.futures' ThreadPoolExecutor joins its threads when the interpreter exits, so after
a Ctrl-C kling would wait for a download or a slow answer on a worker to finish. These workers
are daemon threads: the process leaves at once, and the download module removes the
temporary files of transfers cut short (`download.remove_unfinished`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Inline(Executor):
    """Each call runs at once on the calling thread, which a Ctrl-C can then interrupt: the
    cheap path for one request at a time (no thread hand-offs)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # the job's outcome; a KeyboardInterrupt goes on up
            future.set_exception(exc)
        return future


class Workers(Executor):
    """At most `count` daemon threads taking calls from one queue, each started when a call
    finds no thread idle: `batch -p 8` on 3 lines starts 3 threads, not 8.

    With `patience` (seconds), only `floor` threads start that way. While calls wait, a look
    every `patience` gives each waiting call a thread if every thread is held by one call for
    half that long: the service is slow (or stuck), and more requests in flight help, where
    on a fast service they would not. Polls on a fast service are then done by a few threads
    going from one call to the next, rather than by a thread woken for each (the hand-off
    costs more CPU than the poll); 50 ms away, 1,000 polls still go out 200 at a time."""

    def __init__(
        self, count: int, name: str = "kling", *, patience: float | None = None, floor: int = 1
    ):
        self._calls: SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = SimpleQueue()
        self._count = count
        self._name = name
        self._patience = patience
        self._floor = max(1, min(floor, count))
        self._threads: list[threading.Thread] = []
        self._since: list[float | None] = []  # by thread: when its call began, None: no call
        self._idle = 0  # threads waiting for a call (without `patience`)
        self._timer: threading.Timer | None = None  # the look at the calls still waiting
        self._closing = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._patience is not None:
                if len(self._threads) < self._floor:
                    self._start()
                elif self._timer is None:
                    self._look_later()
            elif self._idle:
                self._idle -= 1  # this call is that thread's: the next one needs another
            elif len(self._threads) < self._count:
                self._start()
        self._calls.put((future, lambda: fn(*args, **kwargs)))
        return future

    def _start(self) -> None:  # under the lock
        slot = len(self._threads)
        thread = threading.Thread(
            target=self._work, args=(slot,), name=f"{self._name}-{slot}", daemon=True
        )
        self._threads.append(thread)
        self._since.append(None)
        thread.start()

    def _look_later(self) -> None:  # under the lock
        if self._closing:
            return
        assert self._patience is not None
        self._timer = threading.Timer(self._patience, self._look)
        self._timer.daemon = True
        self._timer.start()

    def _look(self) -> None:
        """While calls wait: a thread for each if every thread is held up (see the class)."""
        assert self._patience is not None
        with self._lock:
            self._timer = None
            waiting = self._calls.qsize()
            if not waiting:
                return
            held_from = time.monotonic() - self._patience / 2
            if all(since is not None and since <= held_from for since in self._since):
                for _ in range(min(waiting, self._count - len(self._threads))):
                    self._start()
            else:
                self._look_later()

    def _work(self, slot: int) -> None:
        while (call := self._calls.get()) is not None:
            future, run = call
            if not future.set_running_or_notify_cancel():
                self._free()
                continue
            self._since[slot] = time.monotonic()
            try:
                result = run()
            except BaseException as exc:  # handed to the main thread, which decides
                self._since[slot] = None
                self._free()
                future.set_exception(exc)
            else:
                self._since[slot] = None
                self._free()
                future.set_result(result)

    def _free(self) -> None:
        # Before the result is handed over: the caller's next call finds this thread idle.
        if self._patience is None:
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
            threads = list(self._threads)
            if self._timer is not None:
                self._timer.cancel()
        for _ in threads:
            self._calls.put(None)
        if wait:
            for thread in threads:
                thread.join()
