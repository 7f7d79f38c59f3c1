"""Model work batched without a thread per request: on the event loop, or on one worker thread.

Why: a plain (sync) FastAPI route runs in a pool of up to 40 threads. Ten concurrent
requests then mean ten Python threads fighting for the GIL and two cores, each request's
small torch ops interleaved with the others' -- on 2 cores the pool alone cost more than the
model work (measured: a no-op sync route served 190 req/s where an async one served 440).
Instead an async route hands its call to a batcher, which runs every call queued meanwhile
as one batch through ``run_batch``. A batch function that computes all calls at once (one
(B, D) x (D, N) product instead of B) gets the full benefit.

Two kinds: ``LoopBatcher`` runs batches on the event loop itself, one at a time, each in the
loop turn after its first request arrived; its batch function may be a coroutine, so a batch
can hand its blocking part to a thread and free the loop meanwhile -- recommendations: store
reads (one per batch for the states, one for the preferences), the product, top-k and
reasons on a scoring thread (no store round trip on the loop); the loop checks each request
and writes its reply. ``Batcher`` runs the whole batch on one worker thread -- for work
that waits on disk or the network (ingest: store transactions). Measured on 2 cores, 100k
items, 10 clients: running whole recommendation batches on a worker thread served 15-25%
fewer requests per second than on the loop (each batch paid two thread wake-ups and its
Python work fought the busy loop for the GIL); moving only the product off the loop served
~8% more than keeping it on (6 interleaved runs each: median 1,545 against 1,420 req/s, p99
alike within the machine's noise). The store reads moved to the scoring thread too
afterwards (so a slow store never stalls the loop).

Under load the batches of ``LoopBatcher`` wait ``window`` for company between one batch and
the next (the service's default is 1 ms, ``ServeSettings.batch_window_ms``). Without that
wait, 10 closed-loop clients split into two alternating batches of ~5, each paying the
product's fixed cost (reading the 12.8 MB item table of a 100k-item, dim-32 catalogue: ~0.55
ms of the ~0.7 ms a batch of 5 took); with it they form batches of ~9. Measured with
``bench/serve.py``'s server on 2 cores, 100k items, 10 clients, 3 runs each: server CPU per
request 0.43 ms against 0.61 ms, 2,080 against 1,580 req/s, p50 4.6 against 6.3 ms. A
0.5 ms wait was too short to merge the two groups on this machine (no change) and 2 ms
raised p99 (ratio to the no-op route 2.5 against 2.2 at 1 ms).
"""

from __future__ import annotations

import asyncio
import inspect
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
            return self._done(requests, self.run_batch(requests))
        except Exception as exc:
            return self._failed(requests, exc)

    def _done(self, requests: list, results: Sequence) -> list:
        results = list(results)
        if len(results) != len(requests):
            raise RuntimeError(f"{self.name}: batch function returned {len(results)} "
                               f"results for {len(requests)} requests")
        self.batches += 1
        self.requests += len(requests)
        return results

    def _failed(self, requests: list, exc: Exception) -> list:
        log.error("%s: batch of %d failed", self.name, len(requests), exc_info=exc)
        self.batches += 1
        self.requests += len(requests)
        return [exc] * len(requests)


class LoopBatcher(_Batching[T, R]):
    """Run requests in batches on the event loop, one batch at a time.

    The first request of a batch schedules it for the next loop turn, so requests whose
    bytes arrived together are computed together; requests that arrive while a batch runs
    form the next one. While the service is busy (the last batch ended less
    than ``window`` seconds ago, or requests arrived while it ran) a batch waits ``window``
    seconds for company instead; a lone request on a quiet service never waits.

    ``run_batch`` may be a plain function: it then runs on the loop, which serves no one
    meanwhile, so keep it short and free of I/O waits. Or a coroutine function, whose awaits
    free the loop: the service awaits its torch work on a thread, and the loop reads and
    answers other connections meanwhile. A request whose client went away before its batch
    ran is skipped. Same interface as ``Batcher``.
    """

    def __init__(self, run_batch: Callable[[Sequence[T]], Any], *, window: float = 0.0,
                 max_batch: int = 32, name: str = "prismrec-batcher") -> None:
        super().__init__(run_batch, window=window, max_batch=max_batch, name=name)
        self._pending: dict[asyncio.AbstractEventLoop, list] = {}  # per loop: (request, future)
        self._draining: set[asyncio.AbstractEventLoop] = set()
        self._busy_until: dict[asyncio.AbstractEventLoop, float] = {}  # loop time
        self._tasks: set[asyncio.Task] = set()  # referenced until done

    async def submit(self, request: T) -> R:
        """Run ``request`` in the next batch and return its result (or raise its error)."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.setdefault(loop, []).append((request, future))
        if loop not in self._draining:
            self._draining.add(loop)
            busy = self.window > 0 and loop.time() < self._busy_until.get(loop, 0.0)
            task = loop.create_task(self._drain(loop, self.window if busy else 0.0))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        """Run batches until no request is waiting."""
        try:
            await asyncio.sleep(delay)  # 0: one more loop turn, to read what has arrived
            while queued := self._pending.pop(loop, []):
                live = [(r, f) for r, f in queued if not f.done()]  # done: cancelled meanwhile
                for start in range(0, len(live), self.max_batch):
                    batch = live[start: start + self.max_batch]
                    results = await self._run_async([r for r, _ in batch])
                    for (_, future), result in zip(batch, results, strict=True):
                        _resolve(future, result)
                if self.window > 0 and self._pending.get(loop):
                    # requests came while the batch ran: the service is busy, so the next
                    # batch waits ``window`` for company too (the replies just resolved go
                    # out meanwhile, and their clients' next requests can join it)
                    await asyncio.sleep(self.window)
        finally:
            self._draining.discard(loop)
            self._busy_until[loop] = loop.time() + self.window

    async def _run_async(self, requests: list) -> list:
        try:
            results = self.run_batch(requests)
            if inspect.isawaitable(results):
                results = await results
            return self._done(requests, results)
        except Exception as exc:
            return self._failed(requests, exc)

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
