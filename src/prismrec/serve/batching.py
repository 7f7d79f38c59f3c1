"""Model work batched without a thread per request: on the event loop, or on one worker thread.

Why: a plain (sync) FastAPI route runs in a pool of up to 40 threads. Ten concurrent
requests then mean ten Python threads fighting for the GIL and two cores, each request's
small torch ops interleaved with the others' -- on 2 cores the pool alone cost more than the
model work (measured: a no-op sync route served 190 req/s where an async one served 440).
Instead an async route hands its call to a batcher, which runs every call queued meanwhile
as one batch through ``run_batch``. A batch function that computes all calls at once (one
(B, D) x (D, N) product instead of B) gets the full benefit.

Two kinds: ``LoopBatcher`` runs the batch on the event loop itself, at the end of the loop
turn in which its requests arrived -- for short, CPU-bound work such as scoring a stored
state (recommendations). ``Batcher`` runs it on one worker thread, so the loop stays free
-- for work that waits on disk or the network (ingest: store transactions). Measured on 2
cores, 100k items, 10 clients: the loop batcher served 15-25% more recommendation requests
per second than the thread, whose every batch paid two thread wake-ups and GIL hand-offs
with the busy loop (``docs/benchmarks.md``, section serve).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
_STOP = object()


def each(fn: Callable[[T], R]) -> Callable[[Sequence[T]], list[R | BaseException]]:
    """A batch function calling ``fn`` once per request; an error fails only its request."""

    def run(requests: Sequence[T]) -> list[R | BaseException]:
        out: list[R | BaseException] = []
        for r in requests:
            try:
                out.append(fn(r))
            except Exception as exc:  # handed to the awaiting request, not swallowed
                out.append(exc)
        return out

    return run


class _Batching(Generic[T, R]):
    """What both batchers share: their settings, the checked batch call and its counters."""

    def __init__(self, run_batch: Callable[[Sequence[T]], Sequence[R | BaseException]], *,
                 window: float = 0.0, max_batch: int = 32, name: str = "prismrec-batcher"
                 ) -> None:
        if not window >= 0:
            raise ValueError(f"window must be >= 0 seconds, got {window!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.run_batch = run_batch
        self.window = float(window)
        self.max_batch = max_batch
        self.name = name
        self._closed = False
        self.batches = 0  # batches run (for tests and metrics)
        self.requests = 0  # requests run

    def _run(self, requests: list) -> list:
        """``run_batch(requests)``, checked; a batch that fails gives every request its error."""
        try:
            results = list(self.run_batch(requests))
            if len(results) != len(requests):
                raise RuntimeError(f"{self.name}: batch function returned {len(results)} "
                                   f"results for {len(requests)} requests")
        except Exception as exc:
            log.exception("%s: batch of %d failed", self.name, len(requests))
            results = [exc] * len(requests)
        self.batches += 1
        self.requests += len(requests)
        return results


class LoopBatcher(_Batching[T, R]):
    """Run the requests that reach the event loop together as one batch, on the loop.

    The first request of a batch schedules the batch for the end of the current loop turn,
    so requests whose bytes arrived together -- typically those that came in while the
    previous batch ran -- are computed together. While the service is busy (the previous
    batch ended less than ``window`` seconds ago) the batch waits ``window`` seconds for
    company instead: the item table is then read once for more requests. A lone request on
    a quiet service never waits. The loop is busy while a batch runs: keep ``run_batch``
    short and free of I/O waits. A request whose client went away before its batch ran is
    skipped. Same interface as ``Batcher``.
    """

    def __init__(self, run_batch: Callable[[Sequence[T]], Sequence[R | BaseException]], *,
                 window: float = 0.0, max_batch: int = 32, name: str = "prismrec-batcher"
                 ) -> None:
        super().__init__(run_batch, window=window, max_batch=max_batch, name=name)
        self._pending: dict[asyncio.AbstractEventLoop, list] = {}  # per loop: (request, future)
        self._busy_until: dict[asyncio.AbstractEventLoop, float] = {}  # loop time

    async def submit(self, request: T) -> R:
        """Run ``request`` in the next batch and return its result (or raise its error)."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        pending.append((request, future))
        if len(pending) == 1:
            if self.window > 0 and loop.time() < self._busy_until.get(loop, 0.0):
                loop.call_later(self.window, self._flush, loop)
            else:
                loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        queued = self._pending.pop(loop, [])
        live = [(r, f) for r, f in queued if not f.done()]  # done: cancelled meanwhile
        for start in range(0, len(live), self.max_batch):
            batch = live[start: start + self.max_batch]
            results = self._run([r for r, _ in batch])
            for (_, future), result in zip(batch, results, strict=True):
                _resolve(future, result)
        self._busy_until[loop] = loop.time() + self.window

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new requests; the batches already scheduled still run."""
        self._closed = True


class Batcher(_Batching[T, R]):
    """Queue requests from async code; one worker thread runs them in batches.

    ``run_batch(requests)`` returns one result per request, in order; a result that is an
    exception is raised in the request that sent it. ``window`` is how long the worker waits
    for more requests after the first of a batch (0: take only what is already queued, so a
    lone request never waits); ``max_batch`` caps a batch. The thread starts on first use.
    """

    def __init__(self, run_batch: Callable[[Sequence[T]], Sequence[R | BaseException]], *,
                 window: float = 0.0, max_batch: int = 32, name: str = "prismrec-batcher"
                 ) -> None:
        super().__init__(run_batch, window=window, max_batch=max_batch, name=name)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def submit(self, request: T) -> R:
        """Run ``request`` in the next batch and return its result (or raise its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._start()
        self._queue.put((request, loop, future))
        return await future

    def _start(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        if self._thread is not None:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name,
                                                daemon=True)
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued requests and stop the thread (the app's shutdown calls this)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _take(self) -> tuple[list, bool]:
        """The next batch (blocking for its first request); True when told to stop."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.perf_counter() + self.window
        while len(batch) < self.max_batch:
            try:
                left = deadline - time.perf_counter()
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # after this batch
                break
            batch.append(item)
        return batch, False

    def _work(self) -> None:
        while True:
            batch, stop = self._take()
            if stop:  # fail whatever raced in behind the stop mark: nobody will run it
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        return
                    if item is not _STOP:
                        _, loop, future = item
                        err = RuntimeError(f"{self.name} is closed")
                        try:
                            loop.call_soon_threadsafe(_resolve, future, err)
                        except RuntimeError:
                            pass
            requests = [r for r, _, _ in batch]
            results = self._run(requests)
            for (_, loop, future), result in zip(batch, results, strict=True):
                try:
                    loop.call_soon_threadsafe(_resolve, future, result)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    pass


def _resolve(future: asyncio.Future, result: Any) -> None:
    if future.done():  # the request was cancelled (client went away)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
