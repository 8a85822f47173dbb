"""Threads for the engine's requests that never hold the process open.

concurrent.futures' ThreadPoolExecutor joins its threads when the interpreter exits, so after
a Ctrl-C kling would wait for a download or a slow answer to finish. These are daemon threads:
the process leaves at once, and the download module removes the temporary files of transfers
cut short (`paths.remove_unfinished`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Workers(Executor):
    """At most `count` daemon threads taking calls from one queue, each started when a call
    finds no thread idle: `batch -p 8` on 3 lines starts 3 threads, not 8."""

    def __init__(self, count: int, name: str = "kling"):
        self._calls: SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = SimpleQueue()
        self._count = count
        self._name = name
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a call
        self._lock = threading.Lock()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._idle:
                self._idle -= 1  # this call is that thread's: the next one needs another
            elif len(self._threads) < self._count:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._calls.put((future, lambda: fn(*args, **kwargs)))
        return future

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, run = call
            if future.set_running_or_notify_cancel():
                try:
                    result = run()
                except BaseException as exc:  # handed to the main thread, which decides
                    self._free()
                    future.set_exception(exc)
                    continue
                self._free()
                future.set_result(result)
            else:
                self._free()

    def _free(self) -> None:
        # Before the result is handed over: the caller's next call finds this thread idle.
        with self._lock:
            self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._calls.put(None)
        if wait:
            for thread in threads:
                thread.join()
