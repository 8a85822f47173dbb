"""Where the engine's requests run: on the calling thread when one at a time is enough, else
on worker threads that never hold the process open.

concurrent.futures' ThreadPoolExecutor joins its threads when the interpreter exits, so after
a Ctrl-C kling would wait for a download or a slow answer on a worker to finish. These workers
are daemon threads: the process leaves at once, and the download module removes the
temporary files of transfers cut short (`download.remove_unfinished`).
"""

from __future__ import annotations

import threading
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
    finds no thread idle: `wait` on 3 tasks starts 3, not the 100 its polls may use."""

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
            if not future.set_running_or_notify_cancel():
                self._free()
                continue
            try:
                result = run()
            except BaseException as exc:  # handed to the main thread, which decides
                self._free()
                future.set_exception(exc)
            else:
                self._free()
                future.set_result(result)

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
