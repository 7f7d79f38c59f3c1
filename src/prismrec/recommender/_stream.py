"""Streaming for a Recommender: ``update`` appends events and advances carried states.

Recurrent models carry their state per user and take one step per new event (O(1) in the
history length); SASRec recomputes over its last ``max_len`` events. ``forget`` drops a
user. Plain functions taking the recommender; ``Recommender`` exposes them as methods.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.interactions import parse_timestamps
from prismrec.data.sequences import Sequences
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError
from prismrec.models.stepper import Stepper
from prismrec.train.inference import encode_sequences

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


@dataclass
class _UserState:
    """One user's model state after their whole current history (eval mode)."""

    hidden: torch.Tensor  # (D,) the user representation
    rnn: tuple[torch.Tensor, ...] | None  # the model's state parts without the batch dim
    # (GRU: (h,), LSTM: (h, c), each (L, D); more parts if the model adds any); None: windowed


def update(rec: Recommender, events: pd.DataFrame | Iterable[Mapping]) -> StreamUpdate:
    """See ``Recommender.update``."""
    rec._check_fitted()
    users, items, times, ids = event_columns(events)
    known = {}
    unknown: dict[str, None] = {}
    n_unknown = duplicates = 0
    batch_ids: set[tuple[str, str]] = set()  # (user, event_id): ids are per user
    per_user: dict[str, list[tuple[float, int]]] = {}
    for j in range(len(users)):
        eid = ids[j]
        if eid is not None and ((users[j], eid) in rec._event_ids
                                or (users[j], eid) in batch_ids):
            duplicates += 1
            continue
        idx = known.get(items[j])
        if idx is None:
            if items[j] not in rec.items_:  # not stored, so its id is not kept either
                unknown.setdefault(items[j])
                n_unknown += 1
                continue
            idx = known[items[j]] = rec.items_.index_of(items[j])
        if eid is not None:
            batch_ids.add((users[j], eid))
        per_user.setdefault(users[j], []).append((times[j], idx))
    rec._event_ids.update(batch_ids)
    new_users = [u for u in per_user if u not in rec.users_]
    if new_users:
        if not rec._own_users:
            rec.users_ = Vocab.from_list(rec.users_.to_list())
            rec._own_users = True
        rec.users_.add(new_users)
    late = 0
    step, rebuild, recomputed = {}, [], []
    for user, evs in per_user.items():
        evs.sort(key=lambda e: e[0])  # stable: ties keep arrival order
        r = rec.users_.index_of(user)
        row = rec._hist_rows.get(r)
        if row is None:
            it, ts = rec._row(r)
            row = rec._hist_rows[r] = (it.tolist(), ts.tolist())
        n_late = sum(1 for t, _ in evs if row[1] and t < row[1][-1])
        late += n_late
        if n_late:
            recomputed.append(user)
        for t, idx in evs:
            pos = bisect_right(row[1], t)
            row[0].insert(pos, idx)
            row[1].insert(pos, t)
        if n_late or user not in rec._states or not rec.model_.recurrent:
            rebuild.append(user)
        else:
            step[user] = evs
    advance(rec, step, rebuild)
    accepted = sum(len(v) for v in per_user.values())
    return StreamUpdate(accepted, duplicates, late, n_unknown, list(unknown), new_users,
                        list(per_user), recomputed)

@torch.no_grad()
def advance(rec: Recommender, step: dict[str, list[tuple[float, int]]],
            rebuild: list[str]) -> None:
    """Carried states: one recurrent step per new event, or a run over the history."""
    model = rec.model_
    was_training = model.training
    if was_training:  # train()/eval() walk every submodule: ~0.2 ms, more than a step
        model.eval()
    try:
        if rebuild:
            rebuild_states(rec, rebuild)
        if step:
            step_states(rec, step)
    finally:
        if was_training:
            model.train()

def rebuild_states(rec: Recommender, users: list[str]) -> None:
    model = rec.model_
    rows = [rec._row(rec.users_.index_of(u)) for u in users]
    if not model.recurrent:  # windowed: the last max_len events (+1 for the first gap)
        w = int(model.max_len) + 1
        win = Sequences.from_lists([i[-w:] for i, _ in rows], [t[-w:] for _, t in rows])
        hidden = encode_sequences(model, win)  # (B, D)
        for b, u in enumerate(users):
            rec._states[u] = _UserState(hidden[b].clone(), None)
        return
    seqs = Sequences.from_lists([i for i, _ in rows], [t for _, t in rows])
    hidden, parts = run(rec, seqs, None, None)
    for b, u in enumerate(users):
        rec._states[u] = _UserState(hidden[b].clone(), tuple(p[:, b].clone() for p in parts))

def step_states(rec: Recommender, step: dict[str, list[tuple[float, int]]]) -> None:
    users = list(step)
    if all(len(evs) == 1 for evs in step.values()) and step_one(rec, step):
        return
    rows, times = [], []
    first_gap = np.empty(len(users))
    for b, u in enumerate(users):
        evs = step[u]
        ts = rec._hist_rows[rec.users_.index_of(u)][1]  # list: no copy of the history
        before = ts[-len(evs) - 1] if len(ts) > len(evs) else None
        first_gap[b] = -1.0 if before is None else evs[0][0] - before
        rows.append([i for _, i in evs])
        times.append([t for t, _ in evs])
    seqs = Sequences.from_lists(rows, times)
    carried = [rec._states[u].rnn for u in users]
    parts = tuple(torch.stack([c[j] for c in carried], dim=1)  # (L, B, D) for h and c
                  for j in range(len(carried[0])))
    hidden, parts = run(rec, seqs, parts, first_gap)
    for b, u in enumerate(users):
        rec._states[u] = _UserState(hidden[b].clone(), tuple(p[:, b].clone() for p in parts))

def step_one(rec: Recommender, step: dict[str, list[tuple[float, int]]]) -> bool:
    """One event per user through the model's cells (``Stepper``); False if it has none."""
    stepper = rec._stepper
    if stepper is None or stepper.model is not rec.model_:  # first update, or a new model
        stepper = rec._stepper = Stepper(rec.model_)
    if stepper.cells is None:  # interest heads, unusual RNNs: the general path
        return False
    users = list(step)
    items = torch.tensor([step[u][0][1] for u in users], dtype=torch.int64)
    gaps = None
    if rec.model_.gap_emb is not None:
        g = []
        for u in users:
            ts = rec._hist_rows[rec.users_.index_of(u)][1]
            g.append(ts[-1] - ts[-2] if len(ts) > 1 else -1.0)
        gaps = torch.tensor(g, dtype=torch.float64)
    state = torch.stack([torch.stack(rec._states[u].rnn) for u in users], dim=2)  # (S,L,B,D)
    hidden, new, _ = stepper.step(state, items, gaps)
    for b, u in enumerate(users):
        rec._states[u] = _UserState(hidden[b].clone(), tuple(new[:, :, b].clone()))
    return True


def run(rec: Recommender, seqs: Sequences, parts: tuple[torch.Tensor, ...] | None,
         first_gap: np.ndarray | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Recurrent run over whole rows from a carried state or fresh: the hidden vector
    after each row's last event (B, D) and the new state's parts (batch on dim 1)."""
    from prismrec.train.batching import event_gaps, gather_padded

    model = rec.model_
    lengths = seqs.lengths
    t = max(int(lengths.max()), 1)
    x = torch.from_numpy(gather_padded(seqs.items, seqs.offsets[:-1], lengths, t))
    gaps = None
    if model.gap_emb is not None:
        g = event_gaps(seqs)
        if first_gap is not None:
            g[seqs.offsets[:-1]] = first_gap  # continue from the event before the batch
        gaps = torch.from_numpy(gather_padded(g, seqs.offsets[:-1], lengths, t, fill=-1.0))
    lens = torch.from_numpy(lengths)
    single = not isinstance(model.initial_state(1), tuple)  # GRU: one tensor
    carried = None if parts is None else (parts[0] if single else parts)
    out, new = model.run(x, lens, gaps, carried, exact_state=True)  # (B, T, D)
    hidden = out[torch.arange(len(lengths)), torch.from_numpy(lengths - 1)]  # (B, D)
    return hidden, ((new,) if single else tuple(new))

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
    return True


def event_columns(events: pd.DataFrame | Iterable[Mapping]
                  ) -> tuple[list[str], list[str], np.ndarray, list]:
    """(users, items, timestamps, event ids or None) of an events frame, validated."""
    if isinstance(events, Mapping):
        raise TypeError("update takes a DataFrame or a list of event records; wrap one "
                        "event in a list")
    if not isinstance(events, pd.DataFrame):
        return record_columns(events)
    missing = [c for c in ("user", "item", "timestamp") if c not in events.columns]
    if missing:
        raise DataError(f"events frame lacks column(s) {missing}; it needs user, item, "
                        "timestamp and may have event_id")
    cols = {c: events[c].tolist() for c in ("user", "item")}  # lists: no per-cell pandas cost
    for c, values in cols.items():
        for row, v in enumerate(values):
            if _missing(v):
                raise DataError(f"events: row {row}: {c} id is missing")
    users = [Vocab._key(u) for u in cols["user"]]
    items = [Vocab._key(i) for i in cols["item"]]
    times = parse_timestamps(events["timestamp"], "events")
    ids = [None] * len(users)
    if "event_id" in events.columns:
        ids = [None if _missing(v) else Vocab._key(v) for v in events["event_id"].tolist()]
    return users, items, times, ids


def record_columns(events: Iterable[Mapping]) -> tuple[list[str], list[str], np.ndarray, list]:
    """``event_columns`` for a list of records (dicts with user, item, timestamp[, event_id]):
    a streaming consumer's natural input, without a DataFrame's per-call cost."""
    try:
        rows = list(events)
    except TypeError:
        raise TypeError("update takes a DataFrame or a list of event records, got "
                        f"{type(events).__name__}") from None
    users, items, stamps, ids = [], [], [], []
    for j, e in enumerate(rows):
        if not isinstance(e, Mapping):
            raise TypeError(f"events[{j}] is a {type(e).__name__}, not a mapping with user, "
                            "item and timestamp")
        for c in ("user", "item", "timestamp"):
            if _missing(e.get(c)):
                raise DataError(f"events: row {j}: {c} is missing")
        users.append(Vocab._key(e["user"]))
        items.append(Vocab._key(e["item"]))
        stamps.append(e["timestamp"])
        eid = e.get("event_id")
        ids.append(None if _missing(eid) else Vocab._key(eid))
    numeric = all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in stamps)
    times = (np.asarray(stamps, dtype=np.float64) if numeric
             else parse_timestamps(pd.Series(stamps, dtype=object), "events"))
    bad = ~np.isfinite(times)
    if bad.any():
        raise DataError(f"events: row {int(np.flatnonzero(bad)[0])}: timestamp is not finite")
    return users, items, times, ids


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))
