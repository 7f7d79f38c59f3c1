"""The one streaming engine: folding events into users' states.

Both the library (``Recommender.update``) and the service (``LiveProfiles``) fold events
through these functions, so the two can never disagree. Plain functions over a ``Served``
(a model and its tables). The rules, one set for both:

1. Duplicates: an event whose ``event_id`` was seen before is ignored (the caller keeps the
   ids: the service's store, the library's memory).
2. Unknown items: an event whose item the model does not know is counted and reported, never
   fed to the model (the service keeps it in its log; the library has nowhere to keep it).
3. Order: a user's new events are taken in time order (ties: arrival order).
4. Late events: if the oldest new event is older than the user's last folded event, the
   user's state is recomputed from their whole history in time order, at once (O(history));
   otherwise each new event advances the state:
5. the recurrent step: LSTM/GRU carry (h[, c]) and the interest head's running state and
   take one step per event, batched across users (O(1) per event in the history length);
6. windows: SASRec recomputes its hidden vector over the last ``max_len`` folded items once
   per update (O(max_len));
7. the first state of a user is the one after their full known history (the checkpoint's,
   plus the library's streamed events), run once; a user nobody knows starts empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from prismrec.data.sequences import Sequences
from prismrec.profile.live.bundle import Served
from prismrec.profile.live.state import UserState, insert_sorted
from prismrec.profile.store import Event, ProfileStore, StoredState


@dataclass
class Plan:
    """One user's pending update: the state being advanced and the events to feed."""

    user: str
    state: UserState
    version: int  # expected version for the compare-and-set (0: no state yet)
    items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_steps: int = 0
    rebuilt: bool = False  # recomputed from the whole history (rule 4, or another model)
    late: bool = False  # recomputed because of a late event (rule 4)


def empty_state(s: Served) -> UserState:
    d = s.model.dim
    rnn = head = None
    if s.recurrent:
        n = 2 if isinstance(s.model.rnn, nn.LSTM) else 1
        rnn = np.zeros((n, s.model.config.layers, d), dtype=np.float32)
        if s.model.head is not None:
            head = s.model.head.initial_state(1, torch.zeros(()))[:, 0].numpy()
    return UserState(rnn=rnn, hidden=np.zeros(d, dtype=np.float32),
                     recent_items=np.zeros(0, dtype=np.int64),
                     recent_times=np.zeros(0, dtype=np.float64),
                     seen=np.zeros(0, dtype=np.int64), head=head)


@torch.no_grad()
def run_history(s: Served, items: np.ndarray, times: np.ndarray) -> UserState:
    """A state from scratch over a whole time-ordered history (O(len))."""
    st = empty_state(s)
    n = len(items)
    if n == 0:
        return st
    gaps = np.concatenate([[-1.0], np.diff(times)])
    use_gaps = s.model.gap_emb is not None
    if s.recurrent:
        x = torch.from_numpy(np.ascontiguousarray(items, dtype=np.int64))[None]  # (1, T)
        g = torch.from_numpy(gaps)[None] if use_gaps else None
        out, state = s.model.run(x, torch.tensor([n]), g, None, exact_state=True)
        parts = list(state) if isinstance(state, tuple) else [state]
        if s.model.head is not None:  # (h[, c], head): the head's state rides last
            st.head = np.ascontiguousarray(parts.pop()[:, 0].numpy())  # (K, F)
        st.rnn = np.ascontiguousarray(torch.stack(parts)[:, :, 0].numpy())  # (S, L, D)
        st.hidden = out[0, n - 1].numpy().copy()
    else:
        w = s.window
        x = torch.from_numpy(np.ascontiguousarray(items[-w:], dtype=np.int64))[None]
        g = torch.from_numpy(gaps[-w:])[None] if use_gaps else None
        st.hidden = s.model.encode(x, torch.tensor([x.shape[1]]), g)[0].numpy().copy()
    st.recent_items = np.asarray(items[-s.keep:], dtype=np.int64)
    st.recent_times = np.asarray(times[-s.keep:], dtype=np.float64)
    st.n_folded = n
    st.last_ts = float(times[-1])
    return st


def known_state(s: Served, user: str) -> UserState:
    """The state before any logged event: after the user's full known history, or empty."""
    row = s.known_row(user)
    if row is None:
        return empty_state(s)
    st = run_history(s, *row)
    st.n_train = st.n_folded
    return st


def merged_history(s: Served, user: str, log_events: list[Event]) -> tuple[np.ndarray,
                                                                            np.ndarray, int]:
    """(items, times) of the known history and the logged events of known items, in time
    order (ties: the known history first, then log order); and how many came from the log."""
    row = s.known_row(user)
    t_items, t_times = row if row is not None else (np.zeros(0, np.int64), np.zeros(0))
    known = [(s.item_index.get(e.item), e.timestamp) for e in log_events]
    l_items = np.array([i for i, _ in known if i is not None], dtype=np.int64)
    l_times = np.array([t for i, t in known if i is not None], dtype=np.float64)
    items = np.concatenate([t_items, l_items])
    times = np.concatenate([t_times, l_times])
    order = np.argsort(times, kind="stable")
    return items[order], times[order], len(l_items)


def rebuild_plan(s: Served, user: str, version: int, log_events: list[Event]) -> Plan | None:
    """A state from the known history and the whole log, in time order; None: no log."""
    if not log_events:
        return None
    items, times, n_log = merged_history(s, user, log_events)
    st = run_history(s, items, times)
    st.n_train = len(items) - n_log
    st.n_logged = len(log_events)
    st.n_unknown = len(log_events) - n_log
    st.seen = np.unique(np.array([s.item_index[e.item] for e in log_events
                                  if e.item in s.item_index], dtype=np.int64))
    plan = Plan(user, st, version)
    plan.rebuilt = True
    plan.n_steps = n_log
    return plan


def fold(s: Served, plan: Plan, items: list[int | None], times: list[float]) -> bool:
    """Queue a user's new events on ``plan`` (item indices, None for unknown items; their
    times). False (nothing changed) when rule 4 asks for a recomputation instead."""
    st = plan.state
    order = sorted(range(len(times)), key=times.__getitem__)  # stable: ties keep arrival
    known = [j for j in order if items[j] is not None]
    if known and st.n_folded > 0 and times[known[0]] < st.last_ts:
        return False  # a late event: recompute from the whole history
    st.n_logged += len(items)
    st.n_unknown += len(items) - len(known)
    new_items = [items[j] for j in known]
    new_times = [float(times[j]) for j in known]
    gaps = [t - (st.last_ts if i == 0 else new_times[i - 1]) if (i or st.n_folded) else -1.0
            for i, t in enumerate(new_times)]
    if new_items:
        st.seen = insert_sorted(st.seen, new_items)
        st.recent_items = np.concatenate([st.recent_items, new_items])[-s.keep:]
        st.recent_times = np.concatenate([st.recent_times, new_times])[-s.keep:]
        st.last_ts = new_times[-1]
        st.n_folded += len(new_items)
    plan.items = np.asarray(new_items, dtype=np.int64)
    plan.gaps = np.asarray(gaps, dtype=np.float64)
    plan.n_steps = len(new_items)
    return True


def make_plans(s: Served, store: ProfileStore, users: list[str],
               usable, initial, stored: Mapping[str, StoredState | None],
               known: Mapping[str, tuple[int, list[Event]]] | None = None
               ) -> list[Plan | None]:
    """Decide what to feed the model for each user (None: nothing to do).

    ``stored``: the users' stored states (one read by the caller); ``usable(user, stored)``
    decodes one if this bundle computed it; ``initial(user)`` is the state before any logged
    event. A usable state needs the log events after it; no state or an unusable one
    (another checkpoint, an unreadable blob: rebuilt) needs the whole log, and so does a
    user with a late event (rule 4). ``known``: log
    tails the caller just appended; a user whose state ends where their tail begins is not
    read back (one store round trip instead of two).
    """
    bases = {u: usable(u, stored.get(u)) for u in users}
    since = {u: b.n_logged if b is not None else 0 for u, b in bases.items()}
    tails: dict[str, list[Event]] = {}
    for u, start in since.items():
        tail = (known or {}).get(u)
        if tail is not None and tail[0] == start:
            tails[u] = tail[1]
    missing = {u: start for u, start in since.items() if u not in tails}
    if missing:
        tails.update(store.events_since(missing))
    plans: list[Plan | None] = []
    for user in users:
        st, base, new = stored.get(user), bases[user], tails[user]
        if base is None and st is not None:
            plans.append(rebuild_plan(s, user, st.version, new))
            continue
        if base is None:
            base = initial(user).copy()
        elif not new:
            plans.append(None)  # nothing to do: already folded by someone
            continue
        else:
            base = base.copy()
        plan = Plan(user, base, st.version if st is not None else 0)
        if not fold(s, plan, [s.item_index.get(e.item) for e in new],
                    [e.timestamp for e in new]):
            plan = rebuild_plan(s, user, plan.version, store.events(user))
            plan.late = True
        plans.append(plan)
    return plans


@torch.inference_mode()
def run_steps(s: Served, plans: list[Plan]) -> None:
    """Feed every plan's queued events to the model, batched across users."""
    plans = [p for p in plans if p.n_steps and not p.rebuilt]
    if not plans:
        return
    if not s.recurrent:
        _encode_windows(s, plans)
        return
    plans.sort(key=lambda p: -p.n_steps)  # users still stepping are always a prefix
    steps = np.array([p.n_steps for p in plans])
    b, m = len(plans), int(steps[0])
    items = np.zeros((b, m), dtype=np.int64)
    gaps = np.full((b, m), -1.0)
    for r, p in enumerate(plans):
        items[r, : p.n_steps] = p.items
        gaps[r, : p.n_steps] = p.gaps
    items_t = torch.from_numpy(items)
    gaps_t = torch.from_numpy(gaps) if s.model.gap_emb is not None else None
    state = torch.from_numpy(np.stack([p.state.rnn for p in plans], axis=2))  # (S, L, B, D)
    hidden = torch.from_numpy(np.stack([p.state.hidden for p in plans]))  # (B, D)
    head = (None if s.model.head is None else  # (K, B, F) interest head state
            torch.from_numpy(np.stack([p.state.head for p in plans], axis=1)))
    for j in range(m):
        n = int((steps > j).sum())
        g = None if gaps_t is None else gaps_t[:n, j]
        if n == b:
            hidden, state, head = s.stepper.step(state, items_t[:, j], g, head)
        else:
            h, st, hs = s.stepper.step(state[:, :, :n], items_t[:n, j], g,
                                       None if head is None else head[:, :n])
            hidden[:n], state[:, :, :n] = h, st
            if head is not None:
                head[:, :n] = hs
    state_np, hidden_np = state.numpy(), hidden.numpy()
    for r, p in enumerate(plans):
        p.state.rnn = np.ascontiguousarray(state_np[:, :, r])
        p.state.hidden = hidden_np[r].copy()
        if head is not None:
            p.state.head = np.ascontiguousarray(head[:, r].numpy())


def window_gaps(st: UserState, n: int) -> np.ndarray:
    """The time gaps of the last ``n`` folded items (-1 before a user's first event)."""
    if st.n_folded > n:  # the event before the window is kept (R > max_len)
        return np.diff(st.recent_times[-(n + 1):])
    return np.concatenate([[-1.0], np.diff(st.recent_times[-n:])])


def _encode_windows(s: Served, plans: list[Plan]) -> None:
    """SASRec: the hidden vector over each user's last max_len items (O(max_len))."""
    rows, lens, gap_rows = [], [], []
    for p in plans:
        n = min(s.window, len(p.state.recent_items))
        rows.append(p.state.recent_items[-n:])
        lens.append(n)
        gap_rows.append(window_gaps(p.state, n))
    t = max(lens)
    x = np.zeros((len(plans), t), dtype=np.int64)
    gaps = np.full((len(plans), t), -1.0)
    for b, (items, g) in enumerate(zip(rows, gap_rows, strict=True)):
        x[b, : len(items)] = items
        gaps[b, : len(g)] = g
    use_gaps = s.model.gap_emb is not None
    with torch.no_grad():
        out = s.model.encode(torch.from_numpy(x), torch.tensor(lens),
                             torch.from_numpy(gaps) if use_gaps else None)  # (B, D)
    for b, p in enumerate(plans):
        p.state.hidden = out[b].numpy().copy()


def history_bag(s: Served, user: str, log_events: list[Event]) -> Sequences:
    """The user's history as ``Recommender.recommend`` sees it, for the item-item part."""
    items, times, _ = merged_history(s, user, log_events)
    return Sequences.from_lists([items], [times])


@torch.no_grad()
def interests_of(s: Served, st: UserState) -> tuple[np.ndarray, np.ndarray]:
    """Interest vectors (K, D) and weights (K,) of a folded state (model with a head):
    recurrent models read them from the carried state (O(K D)), SASRec from its window."""
    model = s.model
    if s.recurrent:
        parts = [torch.from_numpy(x)[:, None] for x in st.rnn]  # (L, 1, D) each
        v, w = model.state_interests((*parts, torch.from_numpy(st.head)[:, None]))
    else:
        n = min(s.window, len(st.recent_items))
        x = torch.from_numpy(np.ascontiguousarray(st.recent_items[-n:]))[None]
        gaps = (torch.from_numpy(window_gaps(st, n))[None]
                if model.gap_emb is not None else None)
        it = model.interests(x, torch.tensor([n]), gaps)
        v, w = it.vectors, it.weights
    return v[0].float().numpy(), w[0].double().numpy()
