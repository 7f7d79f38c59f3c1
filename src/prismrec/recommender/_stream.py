"""Streaming for a Recommender: ``update`` appends events and advances carried states.

Events are parsed and folded by the one streaming engine the live service uses too
(``prismrec.profile.live.records.parse_events``, ``prismrec.profile.live.engine``), with its
rules: duplicates ignored, unknown items reported and not fed to the model, a user's new
events taken in time order, a late event recomputing that user's state from their whole
history, one recurrent step per event (interest-head state carried along), SASRec's window.
``forget`` drops a user. Plain functions taking the recommender; ``Recommender`` exposes
them as methods.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from prismrec.data.vocab import Vocab
from prismrec.profile.live import engine
from prismrec.profile.live.bundle import Served
from prismrec.profile.live.records import parse_events

if TYPE_CHECKING:
    from prismrec.recommender.core import Recommender


@dataclass(frozen=True)
class StreamUpdate:
    """What one ``Recommender.update`` did.

    ``accepted`` events were stored (their items are known); ``duplicates`` repeated an
    ``event_id`` their user sent before (ignored; ids are per user, as in the stores);
    ``late`` were older than their user's latest event (stored in time order; those users'
    states were recomputed, listed in ``recomputed``).
    ``unknown_items`` lists once each, in arrival order, the item ids the model does not
    know; ``unknown_events`` counts the events that carried them (not stored: add the items
    with ``add_items`` and send the events again).
    """

    accepted: int
    duplicates: int
    late: int
    unknown_events: int
    unknown_items: list[str] = field(default_factory=list)
    new_users: list[str] = field(default_factory=list)
    users_updated: list[str] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "late": self.late,
                "unknown_events": self.unknown_events,
                "unknown_items": list(self.unknown_items), "new_users": list(self.new_users),
                "users_updated": list(self.users_updated),
                "recomputed": list(self.recomputed)}


def served(rec: Recommender) -> Served:
    """The engine's view of ``rec``'s model (rebuilt when the model or its items change)."""
    s = rec._served
    if s is None or s.model is not rec.model_ or s.n_items != len(rec.items_):
        s = rec._served = Served.streaming(rec.model_, rec.items_)
    return s


def update(rec: Recommender, events: pd.DataFrame | Iterable[Mapping]) -> StreamUpdate:
    """See ``Recommender.update``."""
    rec._check_fitted()
    batch = parse_events(events if isinstance(events, (pd.DataFrame, Mapping))
                         else list(events))
    s = served(rec)
    unknown: dict[str, None] = {}
    n_unknown = duplicates = 0
    batch_ids: set[tuple[str, str]] = set()  # (user, event_id): ids are per user
    per_user: dict[str, list[tuple[float, int]]] = {}
    for ev in batch:  # rule 1 (duplicates) and rule 2 (unknown items)
        eid = ev.event_id
        if eid is not None and ((ev.user, eid) in rec._event_ids
                                or (ev.user, eid) in batch_ids):
            duplicates += 1
            continue
        idx = s.item_index.get(ev.item)
        if idx is None:  # not stored, so its id is not kept either
            unknown.setdefault(ev.item)
            n_unknown += 1
            continue
        if eid is not None:
            batch_ids.add((ev.user, eid))
        per_user.setdefault(ev.user, []).append((ev.timestamp, idx))
    rec._event_ids.update(batch_ids)
    new_users = [u for u in per_user if u not in rec.users_]
    if new_users:
        if not rec._own_users:
            rec.users_ = Vocab.from_list(rec.users_.to_list())
            rec._own_users = True
        rec.users_.add(new_users)
    late = 0
    plans, recomputed = [], []
    for user, evs in per_user.items():
        r = rec.users_.index_of(user)
        row = rec._hist_rows.get(r)
        if row is None:
            it, ts = rec._row(r)
            row = rec._hist_rows[r] = (it.tolist(), ts.tolist())
        state = rec._states.get(user)
        if state is None:  # rule 7: the state after the user's whole history so far
            state = engine.run_history(s, np.asarray(row[0], dtype=np.int64),
                                       np.asarray(row[1], dtype=np.float64))
        late += sum(1 for t, _ in evs if row[1] and t < row[1][-1])
        plan = engine.Plan(user, state.copy(), 0)
        folded = engine.fold(s, plan, [i for _, i in evs], [t for t, _ in evs])
        for t, idx in sorted(evs, key=lambda e: e[0]):  # stable: ties keep arrival order
            pos = bisect_right(row[1], t)
            row[0].insert(pos, idx)
            row[1].insert(pos, t)
        if folded:
            plans.append(plan)
        else:  # rule 4: recompute from the whole history, in time order
            recomputed.append(user)
            rec._states[user] = engine.run_history(s, np.asarray(row[0], dtype=np.int64),
                                                   np.asarray(row[1], dtype=np.float64))
    engine.run_steps(s, plans)  # rules 5 and 6, batched across users
    for plan in plans:
        rec._states[plan.user] = plan.state
    accepted = sum(len(v) for v in per_user.values())
    return StreamUpdate(accepted, duplicates, late, n_unknown, list(unknown), new_users,
                        list(per_user), recomputed)


def forget(rec: Recommender, user) -> bool:
    """See ``Recommender.forget``."""
    rec._check_fitted()
    key = Vocab._key(user)
    if key not in rec.users_:
        return False
    r = rec.users_.index_of(key)
    hist = rec.histories_
    rest = np.delete(np.arange(len(hist), dtype=np.int64), r)
    users = rec.users_.to_list()
    del users[r]
    states = {u: s for u, s in rec._states.items() if u != key}
    event_ids = {(u, e) for u, e in rec._event_ids if u != key}
    rec.users_ = Vocab.from_list(users)
    rec.histories_ = hist.take(rest)
    rec._states, rec._event_ids, rec._own_users = states, event_ids, True
    tr = getattr(rec, "training_", None)
    if tr is not None and r < len(tr.train_cut):  # the cuts stay aligned with users_
        rec.training_ = replace(tr, train_cut=np.delete(tr.train_cut, r),
                                select_cut=np.delete(tr.select_cut, r))
    return True
