"""What the live service answers with: typed records, and the parsing of event input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from prismrec.data.interactions import parse_timestamps
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError
from prismrec.profile.store import Event, StoreUnavailableError


class ProfileBusyError(StoreUnavailableError):
    """A user's state lost MAX_RETRIES write races in a row (heavy concurrent updates for the
    same user); the events are logged, and retrying later succeeds."""


@dataclass(frozen=True)
class UpdateResult:
    """What one ``LiveProfiles.update`` did.

    ``accepted``/``duplicates``/``late``/``late_users`` come from the store's ingest.
    ``unknown_items`` lists (once each, in arrival order) the item ids of the batch that the
    model does not know: logged, not fed to the model. ``folded`` counts events fed to the
    model; ``deferred_late`` counts late events kept for the next rebuild. ``users_deferred``
    are users whose state could not be written after ``MAX_RETRIES`` concurrent conflicts;
    their events are logged and are folded at their next update or read.
    """

    accepted: int
    duplicates: int
    late: int
    late_users: list[str] = field(default_factory=list)
    unknown_items: list[str] = field(default_factory=list)
    users_updated: list[str] = field(default_factory=list)
    folded: int = 0
    deferred_late: int = 0
    users_deferred: list[str] = field(default_factory=list)
    step_cost: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "late": self.late,
                "late_users": list(self.late_users), "unknown_items": list(self.unknown_items),
                "users_updated": len(self.users_updated), "folded": self.folded,
                "deferred_late": self.deferred_late,
                "users_deferred": list(self.users_deferred), "step_cost": self.step_cost}


@dataclass(frozen=True)
class LiveProfile:
    """What is known about one user: their stored state and the tail of their event log."""

    user: str
    known_from_training: bool  # the checkpoint holds a history for the user
    training_events: int  # events in that (full known) history
    event_count: int  # events in the user's log (the store)
    last_event_time: float | None  # latest timestamp in the log or, failing that, training
    recent_events: list[Event]  # last few logged events, oldest first (unknown items too)
    recent_items: list[str]  # last few items the model folded, oldest first
    checkpoint: str  # the fingerprint of the model now serving
    state_checkpoint: str | None  # the model that computed the stored state (None: no state)
    state_version: int  # 0: no stored state
    state_events: int  # logged events the stored state has folded in
    needs_rebuild: bool
    updated_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user, "known_from_training": self.known_from_training,
            "training_events": self.training_events, "event_count": self.event_count,
            "last_event_time": self.last_event_time,
            "recent_events": [{"item": e.item, "timestamp": e.timestamp, "event": e.event,
                               "value": e.value, "event_id": e.event_id}
                              for e in self.recent_events],
            "recent_items": list(self.recent_items), "checkpoint": self.checkpoint,
            "state_checkpoint": self.state_checkpoint, "state_version": self.state_version,
            "state_events": self.state_events, "needs_rebuild": self.needs_rebuild,
            "updated_at": self.updated_at,
        }


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def check_diversity(diversity: float) -> float:
    if not isinstance(diversity, (int, float)) or isinstance(diversity, bool) or \
            not 0.0 <= float(diversity) <= 1.0:
        raise ValueError(f"diversity must be a number in [0, 1], got {diversity!r}")
    return float(diversity)


def as_events(events: Sequence[Event] | pd.DataFrame) -> list[Event]:
    """Event records from a list of Events or a DataFrame (validated later by the store)."""
    if isinstance(events, pd.DataFrame):
        missing = [c for c in ("user", "item", "timestamp") if c not in events.columns]
        if missing:
            raise DataError(f"events frame lacks column(s) {missing}; it needs user, item, "
                            "timestamp and may have event, value, event_id")
        n = len(events)
        users = [Vocab._key(u) for u in events["user"]]
        items = [Vocab._key(i) for i in events["item"]]
        times = parse_timestamps(events["timestamp"], "events")
        kinds = (events["event"].astype(str).tolist() if "event" in events.columns
                 else ["view"] * n)
        values = ([None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
                   for v in events["value"]] if "value" in events.columns else [None] * n)
        ids = ([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                for v in events["event_id"]] if "event_id" in events.columns else [None] * n)
        return [Event(u, i, float(t), e, v, x)
                for u, i, t, e, v, x in zip(users, items, times, kinds, values, ids,
                                            strict=True)]
    if isinstance(events, Event) or not isinstance(events, Sequence):
        raise DataError("update takes a list of Event records or a DataFrame")
    return list(events)
