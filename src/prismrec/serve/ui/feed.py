"""The live feed: the last events of batches that ``POST /v1/events`` logged, numbered in
order. A retried event (an ``event_id`` already stored) shows again here though the store
skipped it; events of unknown items show too.

Per process (like the metrics): with several workers a page sees the events its worker
took. Events fed to ``LiveProfiles.update`` directly, outside the HTTP route, are not
in it; the user page also polls the store itself, so it sees every logged event.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from prismrec.profile.store import Event

KEEP = 500  # events kept for the feed


@dataclass(frozen=True)
class FeedEvent:
    seq: int  # 1, 2, ... in the order the service took them
    received: float  # unix seconds when the service logged the batch
    event: Event


class EventFeed:
    """A bounded, thread-safe log of recently posted events."""

    def __init__(self, keep: int = KEEP) -> None:
        self._lock = threading.Lock()
        self._events: deque[FeedEvent] = deque(maxlen=keep)
        self._seq = 0

    def publish(self, events: list[Event]) -> None:
        now = time.time()
        with self._lock:
            for e in events:
                self._seq += 1
                self._events.append(FeedEvent(self._seq, now, e))

    def after(self, seq: int, limit: int = 100) -> tuple[list[FeedEvent], int]:
        """Events numbered above ``seq`` (the newest ``limit``), and the last number."""
        with self._lock:
            new = [f for f in self._events if f.seq > seq]
            return new[-limit:], self._seq
