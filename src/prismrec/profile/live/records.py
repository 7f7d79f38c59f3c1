"""What the live service answers with: typed records, and the parsing of event input."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from prismrec.data.interactions import parse_timestamps
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError
from prismrec.profile.store import Event, StoreUnavailableError, validate_events


class ProfileBusyError(StoreUnavailableError):
    """A user's state lost MAX_RETRIES write races in a row (heavy concurrent updates for the
    same user); the events are logged, and retrying later succeeds."""


@dataclass(frozen=True)
class UpdateResult:
    """What one ``LiveProfiles.update`` did.

    ``accepted``/``duplicates``/``late``/``late_users`` come from the store's ingest.
    ``unknown_items`` lists (once each, in arrival order) the item ids of the batch that the
    model does not know: logged, not fed to the model. ``folded`` counts events fed to the
    model one step each; ``recomputed`` lists users whose state was recomputed from their
    whole history because an event was older than their last folded one (the streaming
    engine's rule 4, ``prismrec.profile.live.engine``). ``users_deferred``
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
    recomputed: list[str] = field(default_factory=list)
    users_deferred: list[str] = field(default_factory=list)
    step_cost: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "late": self.late,
                "late_users": list(self.late_users), "unknown_items": list(self.unknown_items),
                "users_updated": len(self.users_updated), "folded": self.folded,
                "recomputed": list(self.recomputed),
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


def parse_events(events: Sequence[Event] | Sequence[Mapping] | pd.DataFrame) -> list[Event]:
    """Validated ``Event`` records from what a caller streams: a list of Events, a list of
    records (dicts with user, item, timestamp and optionally event, value, event_id), or a
    DataFrame with those columns. The one parser of the library's ``Recommender.update`` and
    the service. Ids become strings (``42``, ``"42"`` and ``42.0`` are one id); timestamps
    are unix seconds or date-times. A bad event raises ``DataError`` naming its row.
    """
    if isinstance(events, pd.DataFrame):
        return validate_events(_frame_events(events))
    if isinstance(events, (Event, Mapping, str, bytes)) or not isinstance(events, Sequence):
        if isinstance(events, Mapping):
            raise TypeError("update takes a DataFrame or a list of event records; wrap one "
                            "event in a list")
        raise DataError("update takes a list of Event records or dicts, or a DataFrame, got "
                        f"{type(events).__name__}")
    rows = list(events)
    if all(isinstance(e, Event) for e in rows):
        return validate_events(rows)
    return validate_events(_record_events(rows))


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _record_events(rows: list) -> list[Event]:
    stamps = []
    for j, e in enumerate(rows):
        if not isinstance(e, Mapping):
            raise TypeError(f"events[{j}] is a {type(e).__name__}, not a mapping with user, "
                            "item and timestamp")
        for c in ("user", "item", "timestamp"):
            if _missing(e.get(c)):
                raise DataError(f"events: row {j}: {c} is missing")
        stamps.append(e["timestamp"])
    numeric = all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in stamps)
    times = (np.asarray(stamps, dtype=np.float64) if numeric
             else parse_timestamps(pd.Series(stamps, dtype=object), "events"))
    out = []
    for e, t in zip(rows, times, strict=True):
        value, eid = e.get("value"), e.get("event_id")
        out.append(Event(Vocab._key(e["user"]), Vocab._key(e["item"]), float(t),
                         "view" if _missing(e.get("event")) else str(e["event"]),
                         None if _missing(value) else value,
                         None if _missing(eid) else Vocab._key(eid)))
    return out


def _frame_events(events: pd.DataFrame) -> list[Event]:
    missing = [c for c in ("user", "item", "timestamp") if c not in events.columns]
    if missing:
        raise DataError(f"events frame lacks column(s) {missing}; it needs user, item, "
                        "timestamp and may have event, value, event_id")
    n = len(events)
    cols = {c: events[c].tolist() for c in ("user", "item")}  # lists: no per-cell pandas cost
    for c, values in cols.items():
        for row, v in enumerate(values):
            if _missing(v):
                raise DataError(f"events: row {row}: {c} id is missing")
    users = [Vocab._key(u) for u in cols["user"]]
    items = [Vocab._key(i) for i in cols["item"]]
    times = parse_timestamps(events["timestamp"], "events")
    kinds = (events["event"].astype(str).tolist() if "event" in events.columns
             else ["view"] * n)
    values = ([None if _missing(v) else float(v) for v in events["value"]]
              if "value" in events.columns else [None] * n)
    ids = ([None if _missing(v) else Vocab._key(v) for v in events["event_id"].tolist()]
           if "event_id" in events.columns else [None] * n)
    return [Event(u, i, float(t), e, v, x)
            for u, i, t, e, v, x in zip(users, items, times, kinds, values, ids, strict=True)]
