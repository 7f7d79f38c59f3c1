"""Limits: the request body (before parsing), a per-key token bucket, requests in flight,
and what a user's log admits (a quota by count, an age limit by event time).

Every limit answers with a JSON error naming it; the rate limit (429) and the concurrency
limit (503) add ``Retry-After`` in whole seconds. Limits are per process: with
``--workers N`` each worker keeps its own buckets and in-flight count.
"""

from __future__ import annotations

import json
import math
import threading
import time

from fastapi import HTTPException


async def send_error(send, status: int, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` gets 413 and never reaches a route.

    A declared ``Content-Length`` over the limit is refused at once; a body sent without
    one (chunked) is counted as it arrives and refused when it crosses the limit.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    def _too_large(self, n: int | str) -> str:
        return f"request body of {n} bytes is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "Content-Length header is not a number")
                    return
                if declared > self.max_bytes:
                    await send_error(send, 413, self._too_large(declared))
                    return
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large(f"more than {received}"))
            return message

        await self.app(scope, limited, send)


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each request takes one."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        if not rate > 0 or not burst >= 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate!r}, {burst!r}")
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self.tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one will be there."""
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One token bucket per API key (a key is hashed by its value; the anonymous caller of
    a service without keys shares one bucket)."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def retry_after(self, key: str) -> int:
        """0 when the request may go on, else whole seconds to wait (at least 1)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
            wait = bucket.take()
            if wait:
                self.refused += 1
            return max(1, math.ceil(wait)) if wait else 0


class LogQuota:
    """At most ``max_events`` logged events per user, applied by the service at ingest.

    A blended model reads a user's whole log per recommendation, so an unbounded log is an
    unbounded cost. Events that would take a user past the quota are not stored; the reply
    counts them (``over_quota``), and so does ``prismrec_events_over_quota_total``. Checked
    on the service's one ingest thread, so exact within a process; with several worker
    processes two of them may each admit a batch and pass the quota by at most a batch.
    """

    def __init__(self, store, max_events: int) -> None:
        self.store = store
        self.max_events = int(max_events)

    def split(self, events: list) -> tuple[list, int]:
        """The events to store, and how many are over the quota (dropped)."""
        users = list(dict.fromkeys(e.user for e in events))
        states = self.store.get_states(users)
        room = {}
        for u in users:
            st = states.get(u)
            logged = st.logged if st is not None and st.logged is not None \
                else self.store.event_count(u)
            room[u] = self.max_events - logged
        kept = []
        for e in events:
            if room[e.user] > 0:
                room[e.user] -= 1
                kept.append(e)
        return kept, len(events) - len(kept)


def drop_too_old(events: list, max_age: float, now: float) -> tuple[list, int]:
    """The events to store, and how many are older than ``max_age`` seconds (dropped).

    Age is judged by the event's own ``timestamp`` against the server's clock when the
    batch is ingested (``now``): an event stamped before ``now - max_age`` is not stored,
    not folded into its user's state, and counted (``too_old`` in the reply and
    ``prismrec_events_too_old_total``). It is an admission rule, like ``LogQuota``, so a
    user's state always folds exactly the events their log holds. Events already logged
    are never removed as they age: the log is append-only and each state folds it from
    the start, so expiring old events would mean rebuilding the state from what is left.
    """
    cutoff = now - max_age
    kept = [e for e in events if e.timestamp >= cutoff]
    return kept, len(events) - len(kept)
