"""Live profiles: a fitted sequence model kept up to date, event by event, over a ProfileStore.

``LiveProfiles(recommender, store)`` is the streaming path of the architecture. ``update``
logs events through the store (idempotent by ``event_id``) and then advances each user's
model state by the new events only:

- recurrent models (LSTM, GRU) carry their state (h[, c]) and take one step per new event:
  O(1) per event in the history length, the history is never re-read;
- SASRec has no recurrent state; it keeps its window of the last ``max_len`` items and
  recomputes the hidden vector over that window once per update: O(max_len) per update.

Where the state lives. Per user, the store holds the append-only event log (the truth) and
one serialized state: the recurrent state tensors, the last hidden output, the last folded
timestamp, counters, the recent items and the model items seen in the log. It is written
with safetensors (never pickle) and tagged with ``checkpoint``, a fingerprint of the model
weights, vocabularies and training histories, so a state computed by another model is never
used: it is rebuilt from the log. Writes are compare-and-set on the state version and retried
after re-reading, so several threads or processes (workers sharing one Redis) never lose an
update: the state is always a function of a prefix of the log, and the last writer folds
whatever the others logged.

Rules a caller can rely on:

- A user known from training starts from their training history (the model is run over
  ``recommender.histories_`` once, at first sight); a user the model never saw starts fresh.
- Events whose item the model does not know are logged and reported in
  ``UpdateResult.unknown_items``, but not fed to the model.
- Late events (older than an event already folded) are stored and counted at once and are
  filtered from recommendations as seen, but they are folded into the profile in time order
  only at the next rebuild (``rebuild(user)`` / ``rebuild_stale()``); until then the state
  is flagged ``needs_rebuild``.
- Streaming a history event by event gives the same scores (to 1e-5) as computing it in one
  batch with ``Recommender.recommend_for_sequence``; tested.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from torch import nn

from prismrec.data.interactions import parse_timestamps
from prismrec.data.sequences import Sequences
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError
from prismrec.models.stepper import Stepper
from prismrec.profile.ids import lookup_id
from prismrec.profile.store import (
    ConcurrentUpdateError,
    Event,
    ProfileStore,
    PutStatesResult,
    StatePut,
    StoredState,
    StoreUnavailableError,
    validate_events,
)

if TYPE_CHECKING:  # the profile step builds on a fitted recommender; it does not import it
    from prismrec.models.topk import ScoreTable
    from prismrec.recommender import Recommender

log = logging.getLogger(__name__)

STATE_FORMAT = 1  # bump when the blob layout changes; older blobs are rebuilt from the log
RECENT = 10  # recent items kept for reasons and the profile view
MAX_RETRIES = 16  # compare-and-set attempts per user before the update is deferred
CACHE_USERS = 20_000  # decoded states kept in memory per process (~1-3 KB each)
_META = ("format", "n_folded", "n_train", "n_logged", "n_late", "n_unknown", "last_ts")


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
    known_from_training: bool
    training_events: int
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


@dataclass(frozen=True)
class Recommendations:
    """Top items for one user, best first, with the recent item behind each (if any)."""

    user: str
    items: list[str]
    scores: list[float]  # model scores, or training counts when fallback == "popular"
    because: list[str | None]  # the recent item most similar by item-embedding cosine
    similarity: list[float | None]  # that cosine
    fallback: str | None  # "popular" when the user has no usable history, else None
    checkpoint: str

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({
            "rank": np.arange(1, len(self.items) + 1, dtype=np.int64),
            "item": list(self.items),
            "score": np.asarray(self.scores, dtype=np.float64),
            "because": pd.Series(self.because, dtype=object),
            "similarity": np.array([np.nan if x is None else x for x in self.similarity],
                                   dtype=np.float64)})
        frame.attrs.update(fallback=self.fallback, user=self.user, checkpoint=self.checkpoint)
        return frame


class RecommendationBatch:
    """``LiveProfiles.recommendations_many`` split in its three steps: made by
    ``start_recommendations`` (checks, states: store reads), then ``score()`` (the (B, D) x
    (D, N) product and one top-k over the batch), then ``results()`` (MMR, reasons).

    ``score()`` touches only this batch and the item table it was started with (an
    ``add_items`` meanwhile does not change it), so it may run on another thread; it writes
    into that thread's score buffer, so one thread scores one batch at a time.
    """

    def __init__(self, live: LiveProfiles, out: list,
                 scored: list[tuple[int, str, int, float, _State, np.ndarray]],
                 scorer: ScoreTable) -> None:
        self._live, self._out, self._scored, self._scorer = live, out, scored, scorer
        self._ranked: tuple[np.ndarray, np.ndarray, list[int]] | None = None

    def score(self) -> None:
        """Every scored request's candidates, best first (torch; see the class docstring)."""
        if not self._scored or self._ranked is not None:
            return
        live, scorer = self._live, self._scorer
        n = scorer.n_items
        blend = getattr(live.recommender, "item_item_", None) is not None
        with torch.no_grad():
            hidden = torch.from_numpy(np.stack([s[4].hidden for s in self._scored]))  # (B, D)
            scores = scorer.scores(hidden)  # (B, N + padding), this thread's buffer
            pools = []
            for b, (_, user, k, diversity, _, banned) in enumerate(self._scored):
                if blend:
                    scores[b, :n] = live._blended(user, scores[b, :n])
                if len(banned):
                    scores[b, torch.from_numpy(banned)] = -torch.inf
                pools.append(min(n - len(banned), k if diversity == 0 else max(4 * k, k + 20)))
            # one top-k over the batch (cheaper than one per row); each row keeps its pool
            values, indices = scorer.topk(scores, max(pools))
        self._ranked = indices.numpy(), values.double().numpy(), pools

    def results(self) -> list[Recommendations | Exception]:
        """One result per request, in order (an exception where that request failed)."""
        if self._scored and self._ranked is None:
            raise RuntimeError("RecommendationBatch.results() before score()")
        out = list(self._out)
        if self._ranked is not None:
            top_idx, top_val, pools = self._ranked
            for b, (j, user, k, diversity, st, _) in enumerate(self._scored):
                try:
                    out[j] = self._live._top(user, k, diversity, st, top_idx[b, :pools[b]],
                                             top_val[b, :pools[b]])
                except Exception as exc:
                    out[j] = exc
        return out


@dataclass
class _State:
    """A user's decoded model state (numpy, so it serializes without torch)."""

    rnn: np.ndarray | None  # (S, L, D) float32: S = 2 for LSTM (h, c), 1 for GRU; None: SASRec
    hidden: np.ndarray  # (D,) float32, the model output after the last folded event
    recent_items: np.ndarray  # (<= R,) int64 last folded items, oldest first
    recent_times: np.ndarray  # (<= R,) float64 their timestamps
    seen: np.ndarray  # sorted unique int64 model items in the user's log
    n_folded: int = 0  # events fed to the model, training history included
    n_train: int = 0  # of which from the training history
    n_logged: int = 0  # log positions covered (what StoredState.n_events says)
    n_late: int = 0  # late events not folded yet (fixed by a rebuild)
    n_unknown: int = 0  # logged events with items the model does not know
    last_ts: float = 0.0  # timestamp of the last folded event (meaningless if n_folded == 0)
    head: np.ndarray | None = None  # (K, F) float32 the interest head's running state
    # (recurrent models built with interests=K), carried beside the RNN state

    def copy(self) -> _State:
        return replace(self, rnn=None if self.rnn is None else self.rnn.copy(),
                       hidden=self.hidden.copy(),
                       head=None if self.head is None else self.head.copy())


def _fingerprint(rec: Recommender) -> str:
    """Model name + SHA-256 over weights, configs, vocabularies and training histories."""
    model = rec.model_
    h = hashlib.sha256()
    h.update(json.dumps({"model": model.name, "config": model.config.to_dict(),
                         "n_items": model.n_items}, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    for vocab in (rec.items_, rec.users_):
        h.update(b"\x00".join(s.encode("utf-8", "surrogatepass") for s in vocab.to_list()))
        h.update(b"\x01")
    hist = rec.histories_
    for arr in (hist.offsets, hist.items, hist.times):
        h.update(np.ascontiguousarray(arr).tobytes())
    return f"{model.name}-{h.hexdigest()[:24]}"


class LiveProfiles:
    """Per-user model states over a ``ProfileStore``, updated as events arrive.

    See the module docstring for the rules. Thread-safe: the store serializes writes, the
    model is only read, and the in-memory caches are locked.
    """

    def __init__(self, recommender: Recommender, store: ProfileStore) -> None:
        if not hasattr(recommender, "model_"):
            raise ValueError("LiveProfiles needs a fitted Recommender: call fit() or "
                             "Recommender.load() first")
        self.recommender = recommender
        self.store = store
        self.model = recommender.model_
        self.model.eval()
        self.items: Vocab = recommender.items_
        self.users: Vocab = recommender.users_
        self.histories = recommender.histories_
        self.checkpoint = _fingerprint(recommender)
        self.recurrent = bool(self.model.recurrent)
        self.window: int | None = None if self.recurrent else int(self.model.max_len)
        self.n_items = len(self.items)
        self._item_index = {item: i for i, item in enumerate(self.items.to_list())}
        self._keep = max(RECENT, self.window or 0) + 1  # recent items kept in the state
        self._stepper = Stepper(self.model) if self.recurrent else None
        self.step_cost = ("O(1) per event: one recurrent step, the history is not re-read"
                          if self.recurrent else
                          f"O(max_len={self.window}) per update: the hidden vector is "
                          "recomputed over the window of the last max_len items")
        counts = np.bincount(self.histories.items, minlength=self.n_items)[: self.n_items]
        self._popularity = counts.astype(np.float64)
        self._popular_order = np.lexsort((np.arange(self.n_items), -counts))
        with torch.no_grad():
            table = self.model.output_table().detach().float()
            # (N, D) unit rows as numpy: reasons and MMR index a few rows per request, where
            # numpy costs ~1 us a call and torch ~10 us
            self._unit_items = nn.functional.normalize(table, dim=1).contiguous().numpy()
        self._scorer = self.model.score_table()
        self._lock = threading.Lock()
        # SQLite takes one writer at a time, and a thread that finds the file locked sleeps
        # (1, 2, 5, 10 ... ms back-off); threads of one process therefore take turns here.
        from prismrec.profile.sqlite_store import SQLiteStore

        self._writing = threading.Lock() if isinstance(store, SQLiteStore) else nullcontext()
        self._states: OrderedDict[str, tuple[bytes, _State]] = OrderedDict()
        self._train_states: OrderedDict[str, _State] = OrderedDict()

    def __repr__(self) -> str:
        return f"LiveProfiles({self.model.name}, checkpoint={self.checkpoint!r}, {self.store!r})"

    # -- ingest ---------------------------------------------------------------------------------

    def update(self, events: Sequence[Event] | pd.DataFrame) -> UpdateResult:
        """Log ``events`` and advance each of their users' states by their new events.

        ``events`` are ``Event`` records or a DataFrame with columns user, item, timestamp
        (unix seconds or date-times) and optionally event, value, event_id. The batch is
        validated whole: an invalid event raises ``DataError`` and nothing is stored.
        """
        batch = validate_events(_as_events(events))  # issue 15: ids normalised before use
        with self._writing:
            ingest = self.store.append_events(batch)  # validates the whole batch first
            users = list(dict.fromkeys(e.user for e in batch))
            folded, deferred_late, updated, gave_up = self._advance(users, ingest.tails)
        unknown = list(dict.fromkeys(e.item for e in batch if e.item not in self._item_index))
        return UpdateResult(ingest.accepted, ingest.duplicates, ingest.late,
                            list(ingest.late_users), unknown, updated, folded, deferred_late,
                            gave_up, self.step_cost)

    def _advance(self, users: list[str],
                 known: Mapping[str, tuple[int, list[Event]]] | None = None
                 ) -> tuple[int, int, list[str], list[str]]:
        """Fold every user's not yet folded log events; retry users that lost a race.

        However many users, one round costs at most three store round trips (read the
        states, read the log tails, write the states with compare-and-set) and one batched
        model step per event position; only users that lost a race go round again.
        ``known``: the log tails the caller just appended (``IngestResult.tails``); in the
        first round a user whose state ends where their tail begins is not read back.
        """
        folded = deferred = 0
        updated: list[str] = []
        pending = users
        for _ in range(MAX_RETRIES):
            if not pending:
                break
            plans = [p for p in self._plans(pending, known) if p is not None]
            known = None  # a retry reads what the winner of the race left
            self._run_steps(plans)
            written = self._write_many(plans)
            retry = []
            for plan in plans:
                if plan.user in written.conflicts:
                    retry.append(plan.user)
                elif plan.user in written.versions:
                    folded += plan.n_steps
                    deferred += plan.new_late
                    updated.append(plan.user)
            if written.missing:  # forgotten while we computed: nothing of theirs to keep
                log.info("LiveProfiles: %d user(s) forgotten during their update",
                         len(written.missing))
            pending = retry
        if pending:
            log.warning("LiveProfiles: %d user(s) lost %d state races in a row; their events "
                        "are logged and will be folded later: %s", len(pending), MAX_RETRIES,
                        pending[:5])
        return folded, deferred, updated, pending

    # -- planning and stepping ---------------------------------------------------------------------

    def _plans(self, users: list[str],
               known: Mapping[str, tuple[int, list[Event]]] | None = None
               ) -> list[_Plan | None]:
        """Read the users' states and new log events (two store round trips for all of
        them, one when ``known`` holds the tails); decide what to feed the model. None:
        nothing to do for that user."""
        stored = self.store.get_states(users)
        bases = {u: self._usable(u, stored.get(u)) for u in users}
        # a usable state needs the events after it; no state or an unusable one (another
        # checkpoint, an unreadable blob: rebuilt) needs the whole log
        since = {u: b.n_logged if b is not None else 0 for u, b in bases.items()}
        tails: dict[str, list[Event]] = {}
        for u, start in since.items():
            tail = (known or {}).get(u)
            if tail is not None and tail[0] == start:  # the state ends where they begin
                tails[u] = tail[1]
        missing = {u: start for u, start in since.items() if u not in tails}
        if missing:
            tails.update(self.store.events_since(missing))
        plans: list[_Plan | None] = []
        for user in users:
            st, base, new = stored.get(user), bases[user], tails[user]
            if base is None and st is not None:
                plans.append(self._rebuild_plan(user, st.version, new))
                continue
            if base is None:
                base = self._initial(user).copy()
            elif not new:
                plans.append(None)  # nothing to do: already folded by someone
                continue
            else:
                base = base.copy()
            plan = _Plan(user, base, st.version if st is not None else 0,
                         needs_rebuild=bool(st is not None and st.needs_rebuild))
            self._fold_events(plan, new)
            plans.append(plan)
        return plans

    def _fold_events(self, plan: _Plan, events: list[Event]) -> None:
        """Update counters, seen items and the recent window; queue the model steps."""
        st = plan.state
        seen_new = []
        items, times, gaps = [], [], []
        for ev in events:
            st.n_logged += 1
            idx = self._item_index.get(ev.item)
            if idx is None:
                st.n_unknown += 1
                continue
            seen_new.append(idx)
            if st.n_folded > 0 and ev.timestamp < st.last_ts:
                st.n_late += 1  # folded in time order at the next rebuild
                plan.new_late += 1
                continue
            gaps.append(ev.timestamp - st.last_ts if st.n_folded > 0 else -1.0)
            items.append(idx)
            times.append(ev.timestamp)
            st.last_ts = ev.timestamp
            st.n_folded += 1
        if seen_new:
            st.seen = _insert_sorted(st.seen, seen_new)
        if items:
            st.recent_items = np.concatenate([st.recent_items, items])[-self._keep:]
            st.recent_times = np.concatenate([st.recent_times, times])[-self._keep:]
        plan.items = np.asarray(items, dtype=np.int64)
        plan.gaps = np.asarray(gaps, dtype=np.float64)
        plan.n_steps = len(items)

    @torch.inference_mode()
    def _run_steps(self, plans: list[_Plan]) -> None:
        """Feed every plan's queued events to the model, batched across users."""
        plans = [p for p in plans if p.n_steps and not p.rebuilt]
        if not plans:
            return
        if not self.recurrent:
            self._encode_windows(plans)
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
        gaps_t = torch.from_numpy(gaps) if self.model.gap_emb is not None else None
        state = torch.from_numpy(np.stack([p.state.rnn for p in plans], axis=2))  # (S,L,B,D)
        hidden = torch.from_numpy(np.stack([p.state.hidden for p in plans]))  # (B, D)
        head = (None if self.model.head is None else  # (K, B, F) interest head state
                torch.from_numpy(np.stack([p.state.head for p in plans], axis=1)))
        for j in range(m):
            n = int((steps > j).sum())
            g = None if gaps_t is None else gaps_t[:n, j]
            if n == b:
                hidden, state, head = self._stepper.step(state, items_t[:, j], g, head)
            else:
                h, s, hs = self._stepper.step(state[:, :, :n], items_t[:n, j], g,
                                              None if head is None else head[:, :n])
                hidden[:n], state[:, :, :n] = h, s
                if head is not None:
                    head[:, :n] = hs
        state_np, hidden_np = state.numpy(), hidden.numpy()
        for r, p in enumerate(plans):
            p.state.rnn = np.ascontiguousarray(state_np[:, :, r])
            p.state.hidden = hidden_np[r].copy()
            if head is not None:
                p.state.head = np.ascontiguousarray(head[:, r].numpy())

    def _encode_windows(self, plans: list[_Plan]) -> None:
        """SASRec: the hidden vector over each user's last max_len items (O(max_len))."""
        w = self.window
        rows, lens, gap_rows = [], [], []
        for p in plans:
            st = p.state
            n = min(w, len(st.recent_items))
            if st.n_folded > n:  # the event before the window is kept (R > max_len)
                g = np.diff(st.recent_times[-(n + 1):])
            else:  # the window starts at the user's first event
                g = np.concatenate([[-1.0], np.diff(st.recent_times[-n:])])
            rows.append(st.recent_items[-n:])
            lens.append(n)
            gap_rows.append(g)
        t = max(lens)
        x = np.zeros((len(plans), t), dtype=np.int64)
        gaps = np.full((len(plans), t), -1.0)
        for b, (items, g) in enumerate(zip(rows, gap_rows, strict=True)):
            x[b, : len(items)] = items
            gaps[b, : len(g)] = g
        use_gaps = self.model.gap_emb is not None
        with torch.no_grad():
            out = self.model.encode(torch.from_numpy(x), torch.tensor(lens),
                                    torch.from_numpy(gaps) if use_gaps else None)  # (B, D)
        for b, p in enumerate(plans):
            p.state.hidden = out[b].numpy().copy()

    # -- whole histories -------------------------------------------------------------------------

    @torch.no_grad()
    def _run_history(self, items: np.ndarray, times: np.ndarray) -> _State:
        """A state from scratch over a whole time-ordered history (O(len))."""
        st = self._empty_state()
        n = len(items)
        if n == 0:
            return st
        gaps = np.concatenate([[-1.0], np.diff(times)])
        use_gaps = self.model.gap_emb is not None
        if self.recurrent:
            x = torch.from_numpy(np.ascontiguousarray(items, dtype=np.int64))[None]  # (1, T)
            g = torch.from_numpy(gaps)[None] if use_gaps else None
            out, state = self.model.run(x, torch.tensor([n]), g, None, exact_state=True)
            parts = list(state) if isinstance(state, tuple) else [state]
            if self.model.head is not None:  # (h[, c], head): the head's state rides last
                st.head = np.ascontiguousarray(parts.pop()[:, 0].numpy())  # (K, F)
            st.rnn = np.ascontiguousarray(torch.stack(parts)[:, :, 0].numpy())  # (S, L, D)
            st.hidden = out[0, n - 1].numpy().copy()
        else:
            w = self.window
            x = torch.from_numpy(np.ascontiguousarray(items[-w:], dtype=np.int64))[None]
            g = torch.from_numpy(gaps[-w:])[None] if use_gaps else None
            st.hidden = self.model.encode(x, torch.tensor([x.shape[1]]), g)[0].numpy().copy()
        st.recent_items = np.asarray(items[-self._keep:], dtype=np.int64)
        st.recent_times = np.asarray(times[-self._keep:], dtype=np.float64)
        st.n_folded = n
        st.last_ts = float(times[-1])
        return st

    def _empty_state(self) -> _State:
        d = self.model.dim
        rnn = head = None
        if self.recurrent:
            s = 2 if isinstance(self.model.rnn, nn.LSTM) else 1
            rnn = np.zeros((s, self.model.config.layers, d), dtype=np.float32)
            if self.model.head is not None:
                head = self.model.head.initial_state(1, torch.zeros(()))[:, 0].numpy()
        return _State(rnn=rnn, hidden=np.zeros(d, dtype=np.float32),
                      recent_items=np.zeros(0, dtype=np.int64),
                      recent_times=np.zeros(0, dtype=np.float64),
                      seen=np.zeros(0, dtype=np.int64), head=head)

    def _training_row(self, user: str) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            r = self.users.index_of(user)
        except KeyError:
            return None
        return self.histories.row(r), self.histories.row_times(r)

    def _initial(self, user: str) -> _State:
        """The state before any logged event: the training history's, or a fresh one."""
        with self._lock:
            cached = self._train_states.get(user)
            if cached is not None:
                self._train_states.move_to_end(user)
                return cached
        row = self._training_row(user)
        if row is None:
            return self._empty_state()
        st = self._run_history(*row)
        st.n_train = st.n_folded
        with self._lock:
            self._train_states[user] = st
            while len(self._train_states) > CACHE_USERS:
                self._train_states.popitem(last=False)
        return st

    def _rebuild_plan(self, user: str, version: int,
                      log_events: list[Event] | None = None) -> _Plan | None:
        """A state from the training history and the whole log (read unless given), in
        time order."""
        log_events = self.store.events(user) if log_events is None else log_events
        if not log_events:
            return None
        row = self._training_row(user)
        t_items, t_times = row if row is not None else (np.zeros(0, np.int64), np.zeros(0))
        known = [(self._item_index.get(e.item), e.timestamp) for e in log_events]
        l_items = np.array([i for i, _ in known if i is not None], dtype=np.int64)
        l_times = np.array([t for i, t in known if i is not None], dtype=np.float64)
        items = np.concatenate([t_items, l_items])
        times = np.concatenate([t_times, l_times])
        order = np.argsort(times, kind="stable")  # ties keep training first, then log order
        st = self._run_history(items[order], times[order])
        st.n_train = len(t_items)
        st.n_logged = len(log_events)
        st.n_unknown = len(log_events) - len(l_items)
        st.seen = np.unique(l_items)
        plan = _Plan(user, st, version, needs_rebuild=False)
        plan.rebuilt = True
        plan.n_steps = len(l_items)
        return plan

    # -- state I/O -------------------------------------------------------------------------------

    def _usable(self, user: str, stored: StoredState | None) -> _State | None:
        """The decoded stored state if it was computed by this checkpoint, else None."""
        if stored is None or stored.checkpoint != self.checkpoint:
            return None
        with self._lock:  # the cache is keyed on the exact bytes, so it is never stale
            hit = self._states.get(user)
            if hit is not None and hit[0] == stored.blob:
                self._states.move_to_end(user)
                return hit[1]
        st = self._decode(user, stored.blob)
        if st is None or st.n_logged != stored.n_events:
            return None
        self._remember(user, stored.blob, st)
        return st

    def _remember(self, user: str, blob: bytes, st: _State) -> None:
        with self._lock:
            self._states[user] = (blob, st)
            self._states.move_to_end(user)
            while len(self._states) > CACHE_USERS:
                self._states.popitem(last=False)

    def _write(self, user: str, plan: _Plan) -> None:
        st = plan.state
        needs = plan.needs_rebuild or st.n_late > 0
        blob = self._encode(st)
        state = StoredState(checkpoint=self.checkpoint, blob=blob,
                            last_timestamp=float(st.last_ts) if st.n_folded else 0.0,
                            n_events=st.n_logged, needs_rebuild=needs)
        plan.version = self.store.put_state(user, state, expected_version=plan.version)
        self._remember(user, blob, st)

    def _write_many(self, plans: list[_Plan]) -> PutStatesResult:
        """Store every plan's state in one ``put_states`` (compare-and-set per user)."""
        puts, blobs = [], []
        for plan in plans:
            st = plan.state
            blob = self._encode(st)
            blobs.append(blob)
            puts.append(StatePut(plan.user, StoredState(
                checkpoint=self.checkpoint, blob=blob,
                last_timestamp=float(st.last_ts) if st.n_folded else 0.0,
                n_events=st.n_logged, needs_rebuild=plan.needs_rebuild or st.n_late > 0),
                expected_version=plan.version))
        result = self.store.put_states(puts)
        for plan, blob in zip(plans, blobs, strict=True):
            version = result.versions.get(plan.user)
            if version is not None:
                plan.version = version
                self._remember(plan.user, blob, plan.state)
        return result

    def _encode(self, st: _State) -> bytes:
        meta = np.array([STATE_FORMAT, st.n_folded, st.n_train, st.n_logged, st.n_late,
                         st.n_unknown, st.last_ts], dtype=np.float64)  # see _META
        tensors = {"meta": meta, "hidden": st.hidden.astype(np.float32, copy=False),
                   "recent_items": st.recent_items, "recent_times": st.recent_times,
                   "seen": st.seen}
        if st.rnn is not None:
            tensors["rnn"] = st.rnn.astype(np.float32, copy=False)
        if st.head is not None:
            tensors["head"] = st.head.astype(np.float32, copy=False)
        return _save_tensors(tensors)

    def _decode(self, user: str, blob: bytes) -> _State | None:
        """The state in ``blob``, or None (logged) when it is unreadable or another layout."""
        try:
            t = load_tensors(blob)
            meta = dict(zip(_META, t["meta"].tolist(), strict=True))
            if meta["format"] != STATE_FORMAT:
                raise ValueError(f"state format {meta['format']} is not {STATE_FORMAT}")
            d = self.model.dim
            rnn, head = t.get("rnn"), t.get("head")
            if t["hidden"].shape != (d,) or (rnn is None) == self.recurrent:
                raise ValueError("state shapes do not match the model")
            if (head is None) == (self.recurrent and self.model.head is not None):
                raise ValueError("interest head state does not match the model")
            st = _State(rnn=rnn, hidden=t["hidden"], recent_items=t["recent_items"],
                        recent_times=t["recent_times"], seen=t["seen"],
                        n_folded=int(meta["n_folded"]), n_train=int(meta["n_train"]),
                        n_logged=int(meta["n_logged"]), n_late=int(meta["n_late"]),
                        n_unknown=int(meta["n_unknown"]), last_ts=meta["last_ts"],
                        head=head)
            if (len(st.seen) and (st.seen.min() < 0 or st.seen.max() >= self.n_items)) or (
                    len(st.recent_items) and (st.recent_items.min() < 0
                                              or st.recent_items.max() >= self.n_items)):
                raise ValueError("item indices out of range")
            return st
        except (SafetensorError, KeyError, ValueError, TypeError, IndexError) as exc:
            log.warning("LiveProfiles: stored state of user %r is unreadable (%s); rebuilding "
                        "it from the log", user, exc)
            return None

    def _current(self, user: str) -> _State | None:
        """The user's state with every logged event folded, or None if nothing is known.

        A state behind the log -- an ingest in flight, or one cut short by a crash -- is
        brought up to date in memory for this read and not stored: a read never waits for
        the write lock (the service reads on its event loop), and the update that logged the
        events stores them (after a crash: ``rebuild_stale``, ``prismrec serve
        --rebuild-stale``). A state from another checkpoint is rebuilt from the whole log
        and written back once, since recomputing it per read would cost O(history).
        """
        stored = self.store.get_state(user)
        st = self._usable(user, stored)
        if st is not None and st.n_logged >= (
                stored.logged if stored.logged is not None else self.store.event_count(user)):
            return st  # the common case: one store read
        if stored is None and self.store.event_count(user) == 0:
            row = self._training_row(user)
            return None if row is None else self._initial(user)
        if st is not None or stored is None:  # behind the log: fold its tail, write nothing
            (plan,) = self._plans([user])
            if plan is None:  # folded by a writer meanwhile
                return self._usable(user, self.store.get_state(user))
            self._run_steps([plan])
            return plan.state
        with self._writing:
            _, _, _, pending = self._advance([user])
        if pending:
            raise ProfileBusyError(f"user {user!r}: the profile is being updated by many "
                                   "writers at once; retry the request")
        return self._usable(user, self.store.get_state(user))

    # -- reading ---------------------------------------------------------------------------------

    def rebuild(self, user: str) -> bool:
        """Recompute the user's state from their training history and whole log, in time order.

        Folds late events where they belong and replaces a state from another checkpoint.
        Returns False when the user has no logged events (there is nothing to store).
        """
        for _ in range(MAX_RETRIES):
            with self._writing:
                stored = self.store.get_state(user)
                plan = self._rebuild_plan(user, stored.version if stored is not None else 0)
                if plan is None:
                    return False
                try:
                    self._write(user, plan)
                    return True
                except ConcurrentUpdateError:
                    continue
        raise ProfileBusyError(f"user {user!r}: could not rebuild the profile, other writers "
                               f"updated it {MAX_RETRIES} times meanwhile; retry")

    def rebuild_stale(self, limit: int | None = None) -> list[str]:
        """Rebuild users whose state is missing, behind, flagged (late events) or from another
        checkpoint (``store.stale_users``); returns the users rebuilt."""
        done = []
        for user in self.store.stale_users(self.checkpoint):
            if limit is not None and len(done) >= limit:
                break
            if self.rebuild(user):
                done.append(user)
        return done

    def forget(self, user: str) -> bool:
        """Erase the user's log and state from the store and this process's caches.

        The training history inside the checkpoint is part of the model and goes only with
        retraining: a user known from training starts from it again at their next event.
        """
        user = lookup_id(user, "user")  # issue 15: the id as stored (NFC)
        with self._lock:
            self._states.pop(user, None)
            self._train_states.pop(user, None)
        return self.store.forget(user)

    @torch.no_grad()
    def interests(self, user: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's interest vectors (K, D) float32 and weights (K,) float64 now.

        For models built with an interest head (``interests=K``). Recurrent models read them
        from the stored state alone (O(K D), equal to ``model.interests`` over the whole
        history); SASRec recomputes them over its window. None when nothing is known about
        the user yet.
        """
        model = self.model
        if model.head is None:
            raise ValueError(f"this {model.name} model has no interest head: build it with "
                             "interests=K (K >= 2)")
        st = self._current(user)
        if st is None or st.n_folded == 0:
            return None
        if self.recurrent:
            parts = [torch.from_numpy(s)[:, None] for s in st.rnn]  # (L, 1, D) each
            v, w = model.state_interests((*parts, torch.from_numpy(st.head)[:, None]))
        else:
            n = min(self.window, len(st.recent_items))
            times = st.recent_times[-(n + 1):] if st.n_folded > n else st.recent_times[-n:]
            g = np.diff(times) if st.n_folded > n else np.concatenate([[-1.0], np.diff(times)])
            x = torch.from_numpy(np.ascontiguousarray(st.recent_items[-n:]))[None]
            gaps = torch.from_numpy(g)[None] if model.gap_emb is not None else None
            it = model.interests(x, torch.tensor([n]), gaps)
            v, w = it.vectors, it.weights
        return v[0].float().numpy(), w[0].double().numpy()

    def known_user(self, user: str) -> bool:
        """True if the fitted model has a training history for ``user``."""
        return user in self.users

    def recommend(self, user: str, k: int = 10, *, filter_seen: bool = True,
                  exclude: Sequence[str] | None = None, diversity: float = 0.0) -> pd.DataFrame:
        """Top-``k`` items for ``user`` from their stored state, as a DataFrame.

        Columns: rank, item, score, because (the recent item most similar to the
        recommendation by item-embedding cosine, or None), similarity. ``frame.attrs``:
        ``fallback`` is ``"popular"`` when the user has no usable history (unknown to the
        model and no logged event of a known item): the items are then the most popular in
        training and ``score`` is their training count; otherwise None. See
        ``recommendations`` for the arguments.
        """
        return self.recommendations(user, k, filter_seen=filter_seen, exclude=exclude,
                                    diversity=diversity).to_frame()

    def recommendations(self, user: str, k: int = 10, *, filter_seen: bool = True,
                        exclude: Sequence[str] | None = None,
                        diversity: float = 0.0) -> Recommendations:
        """Top-``k`` items for ``user`` as a typed record (what the service answers with).

        Seen items (training history and logged events) are left out with ``filter_seen``;
        ``exclude`` lists more item ids to leave out (ids the model does not know are
        ignored). ``diversity`` in [0, 1] re-ranks the top candidates (4k, at least k + 20)
        by maximal marginal relevance over item-embedding cosine: 0 keeps the model's order,
        1 picks each next item mainly for being unlike those already picked. A blended
        recommender (``Recommender(blend=...)``) blends here too, see ``_blended``.
        """
        (result,) = self.recommendations_many([dict(user=user, k=k, filter_seen=filter_seen,
                                                    exclude=exclude, diversity=diversity)])
        if isinstance(result, BaseException):
            raise result
        return result

    def recommendations_many(self, requests: Sequence[dict[str, Any]]
                             ) -> list[Recommendations | Exception]:
        """Several ``recommendations`` calls (each a dict of its keyword arguments, ``user``
        included) scored with one (B, D) x (D, N) product instead of B.

        Results come in request order and equal one call each; a request that fails (bad
        ``k``, a busy profile) gets its exception in its place and fails no other. The
        service batches concurrent requests through this: over 100k items a request cost
        ~0.6 ms in a batch of ten against ~1.4 ms alone (the item table is read once).
        The three steps are also callable one by one: ``start_recommendations``.
        """
        batch = self.start_recommendations(requests)
        batch.score()
        return batch.results()

    def start_recommendations(self, requests: Sequence[dict[str, Any]]) -> RecommendationBatch:
        """The first step of ``recommendations_many``: check each request, read its user's
        state and banned items. ``score()`` and ``results()`` on the returned batch finish
        it; a server can run ``score()`` -- torch work that releases the GIL -- on another
        thread while its event loop serves other connections."""
        out: list[Recommendations | Exception | None] = [None] * len(requests)
        scored: list[tuple[int, str, int, float, _State, np.ndarray]] = []
        for j, req in enumerate(requests):
            try:
                user, k, diversity, st, banned = self._prepare(**req)
                if st is None or st.n_folded == 0:
                    out[j] = self._popular(user, k, banned)
                else:
                    scored.append((j, user, k, diversity, st, banned))
            except Exception as exc:  # handed back to its own request
                out[j] = exc
        return RecommendationBatch(self, out, scored, self._scorer)

    def _prepare(self, user: str, k: int = 10, filter_seen: bool = True,
                 exclude: Sequence[str] | None = None, diversity: float = 0.0
                 ) -> tuple[str, int, float, _State | None, np.ndarray]:
        """Check one request's arguments; the user's current state and banned items."""
        k = _check_k(k)
        if not isinstance(diversity, (int, float)) or isinstance(diversity, bool) or \
                not 0.0 <= float(diversity) <= 1.0:
            raise ValueError(f"diversity must be a number in [0, 1], got {diversity!r}")
        st = self._current(user)
        return user, k, float(diversity), st, self._excluded(user, st, filter_seen, exclude)

    def _popular(self, user: str, k: int, banned: np.ndarray) -> Recommendations:
        order = self._popular_order
        if len(banned):
            order = order[~np.isin(order, banned)]
        top = order[:k]
        return Recommendations(user, self.items.ids(top), self._popularity[top].tolist(),
                               [None] * len(top), [None] * len(top), "popular",
                               self.checkpoint)

    def _top(self, user: str, k: int, diversity: float, st: _State, idx: np.ndarray,
             val: np.ndarray) -> Recommendations:
        """One user's list from their best candidates, best first: MMR, reasons."""
        if diversity > 0 and len(idx):
            order = self._mmr(idx, val, k, diversity)
            idx, val = idx[order], val[order]
        idx, val = idx[:k], val[:k]
        because, similarity = self._reasons(idx, st)
        return Recommendations(user, self.items.ids(idx), val.tolist(), because, similarity,
                               None, self.checkpoint)

    def _blended(self, user: str, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` (N,) blended with the recommender's item-item part, if it has one.

        The item-item part needs the user's history bag: their training history and the
        logged events of known items, in time order (ties: training first, then log order),
        as ``Recommender.recommend`` sees it. It is read from the store at each call, so the
        bag costs O(history); the model state itself stays O(1) per event.
        """
        rec = self.recommender
        if getattr(rec, "item_item_", None) is None:
            return scores
        row = self._training_row(user)
        t_items, t_times = row if row is not None else (np.zeros(0, np.int64), np.zeros(0))
        known = [(self._item_index.get(e.item), e.timestamp) for e in self.store.events(user)]
        items = np.concatenate([t_items, np.array([i for i, _ in known if i is not None],
                                                  dtype=np.int64)])
        times = np.concatenate([t_times, np.array([t for i, t in known if i is not None],
                                                  dtype=np.float64)])
        order = np.argsort(times, kind="stable")
        hist = Sequences.from_lists([items[order]], [times[order]])
        return rec.blend_scores(scores[None], hist)[0]  # (N,)

    def _excluded(self, user: str, st: _State | None, filter_seen: bool,
                  exclude: Sequence[str] | None) -> np.ndarray:
        parts = []
        if filter_seen and st is not None:
            parts.append(st.seen)
            if st.n_train:
                row = self._training_row(user)
                if row is not None:
                    parts.append(row[0])
        if exclude:
            if isinstance(exclude, str):
                raise TypeError("exclude takes a list of item ids, not one string")
            parts.append(np.array([self._item_index[x] for x in exclude
                                   if isinstance(x, str) and x in self._item_index],
                                  dtype=np.int64))
        if not parts:
            return np.zeros(0, dtype=np.int64)
        if len(parts) == 1 and parts[0] is st.seen:  # already sorted and unique
            return st.seen
        return np.unique(np.concatenate(parts).astype(np.int64))

    def _mmr(self, idx: np.ndarray, val: np.ndarray, k: int, diversity: float) -> np.ndarray:
        """Greedy maximal marginal relevance over the candidate pool; returns an order."""
        vec = self._unit_items[idx]  # (P, D)
        sim = vec @ vec.T  # (P, P)
        span = val[0] - val[-1]
        rel = (val - val[-1]) / span if span > 0 else np.ones_like(val)  # in [0, 1]
        chosen = [0]
        left = np.ones(len(idx), dtype=bool)
        left[0] = False
        max_sim = sim[0].copy()
        while len(chosen) < min(k, len(idx)):
            gain = (1 - diversity) * rel - diversity * max_sim
            gain[~left] = -np.inf
            j = int(np.argmax(gain))  # ties: the better-scored (earlier) candidate
            chosen.append(j)
            left[j] = False
            max_sim = np.maximum(max_sim, sim[j])
        return np.asarray(chosen, dtype=np.int64)

    def _reasons(self, idx: np.ndarray, st: _State) -> tuple[list, list]:
        """For each recommended item, the recent item nearest by cosine (None if not > 0)."""
        recent = st.recent_items[-RECENT:][::-1]  # newest first: ties go to it
        if len(idx) == 0 or len(recent) == 0:
            return [None] * len(idx), [None] * len(idx)
        sim = self._unit_items[idx] @ self._unit_items[recent].T  # (K, R)
        best = sim.argmax(axis=1)
        best_sim = sim[np.arange(len(best)), best].astype(np.float64).tolist()
        ids = self.items.ids(recent[best])
        keep = [x > 0 for x in best_sim]
        return ([i if ok else None for i, ok in zip(ids, keep, strict=True)],
                [x if ok else None for x, ok in zip(best_sim, keep, strict=True)])

    def profile(self, user: str, recent: int = RECENT) -> LiveProfile:
        """What is stored about one user (no model work, no writes).

        ``last_event_time`` is the latest of the log tail, the stored state and the training
        history; ``recent_items`` are the last items the model folded (training history
        included), ``recent_events`` the log tail (unknown items included).
        """
        stored = self.store.get_state(user)
        n = self.store.event_count(user)
        tail = self.store.events(user, since_seq=max(0, n - recent)) if n else []
        row = self._training_row(user)
        st = self._usable(user, stored)
        times = [e.timestamp for e in tail]
        if row is not None and len(row[1]):
            times.append(float(row[1][-1]))
        if st is not None and st.n_folded:
            times.append(st.last_ts)
        recent_idx = (st.recent_items if st is not None
                      else row[0] if row is not None else np.zeros(0, np.int64))
        return LiveProfile(
            user=user, known_from_training=row is not None,
            training_events=0 if row is None else len(row[0]), event_count=n,
            last_event_time=max(times) if times else None, recent_events=tail,
            recent_items=self.items.ids(recent_idx[-recent:]) if recent > 0 else [],
            checkpoint=self.checkpoint,
            state_checkpoint=None if stored is None else stored.checkpoint,
            state_version=0 if stored is None else stored.version,
            state_events=0 if stored is None else stored.n_events,
            needs_rebuild=bool(stored is not None and stored.needs_rebuild),
            updated_at=None if stored is None else stored.updated_at,
        )

    def item_known(self, item: str) -> bool:
        return item in self._item_index

    def add_items(self, rows: pd.DataFrame | Any, encoder: Any = None) -> list[str]:
        """Add or re-encode catalogue items from their text (``Recommender.add_items``).

        New items are recommendable at once. The model changed, so the checkpoint
        fingerprint changes with it: each user's stored state is rebuilt from their log at
        their next update or read (once, O(history)), which also folds logged events of
        items that were unknown until now. Returns the new item ids.
        """
        with self._writing:
            added = self.recommender.add_items(rows, encoder)
            rec = self.recommender
            counts = np.bincount(self.histories.items, minlength=len(rec.items_))
            with torch.no_grad():
                table = self.model.output_table().detach().float()
                unit = nn.functional.normalize(table, dim=1).contiguous().numpy()  # (N, D)
            scorer = self.model.score_table()
            with self._lock:
                self.items = rec.items_
                self.n_items = len(self.items)
                self._item_index = {item: i for i, item in enumerate(self.items.to_list())}
                self._popularity = counts.astype(np.float64)
                self._popular_order = np.lexsort((np.arange(self.n_items), -counts))
                self._unit_items = unit
                self._scorer = scorer
                self.checkpoint = _fingerprint(rec)
                self._states.clear()
                self._train_states.clear()
        log.info("LiveProfiles: added %d item(s); catalogue now %d items, checkpoint %s",
                 len(added), self.n_items, self.checkpoint)
        return added


@dataclass
class _Plan:
    """One user's pending update: the state being advanced and the events to feed."""

    user: str
    state: _State
    version: int  # expected version for the compare-and-set (0: no state yet)
    needs_rebuild: bool = False
    items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gaps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_steps: int = 0
    new_late: int = 0
    rebuilt: bool = False


_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
                       np.dtype(np.int64): "I64"}


def _save_tensors(tensors: dict[str, np.ndarray]) -> bytes:
    """The safetensors bytes of a few small arrays (what ``safetensors.numpy.save`` writes,
    read by its ``load``) in about half its time: the blob is written once per update.

    Layout: u64 little-endian header length, JSON header {name: dtype, shape, data_offsets}
    padded with spaces to 8 bytes, then the arrays' little-endian bytes back to back.
    """
    fields = []
    parts = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        dtype = _SAFETENSORS_DTYPES.get(a.dtype)
        if dtype is None or not name.isidentifier():  # not ours: the library's writer
            from safetensors.numpy import save

            return save(tensors)
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()  # C order
        shape = ",".join(map(str, a.shape))
        fields.append(f'"{name}":{{"dtype":"{dtype}","shape":[{shape}],'
                      f'"data_offsets":[{offset},{offset + len(data)}]}}')
        parts.append(data)
        offset += len(data)
    head = ("{" + ",".join(fields) + "}").encode()
    head += b" " * (-len(head) % 8)
    return b"".join([struct.pack("<Q", len(head)), head, *parts])


def _insert_sorted(seen: np.ndarray, new: list[int]) -> np.ndarray:
    """``seen`` (sorted, unique) with ``new`` added: a few items per update, so no union1d."""
    for x in set(new):
        p = int(np.searchsorted(seen, x))
        if p == len(seen) or seen[p] != x:
            seen = np.concatenate((seen[:p], np.array([x], dtype=seen.dtype), seen[p:]))
    return seen


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _as_events(events: Sequence[Event] | pd.DataFrame) -> list[Event]:
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


__all__ = ["LiveProfile", "LiveProfiles", "ProfileBusyError", "Recommendations",
           "UpdateResult"]
