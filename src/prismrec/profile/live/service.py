"""``LiveProfiles``: per-user model states over a ``ProfileStore``, updated as events arrive.

The core of the live path. It takes an explicit ``LiveBundle`` (model, vocabularies, full
known histories, item-item part, catalogue; ``Recommender.live_bundle()`` makes one) and a
store, and wires the jobs of this package together: ``state`` (encoding), ``engine``
(folding events, rebuilds), ``scoring`` (score table, blend, top-k) and ``compose``
(diversity, reasons). See ``prismrec.profile.live`` for the rules a caller can rely on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
import torch

from prismrec.profile.ids import lookup_id
from prismrec.profile.live import compose, engine
from prismrec.profile.live.bundle import LiveBundle, Served
from prismrec.profile.live.compose import Recommendations
from prismrec.profile.live.records import (
    LiveProfile,
    ProfileBusyError,
    UpdateResult,
    check_diversity,
    check_k,
    parse_events,
)
from prismrec.profile.live.scoring import RecommendationBatch, Scored, banned_items
from prismrec.profile.live.state import RECENT, UserState
from prismrec.profile.live.states import CACHE_USERS, States
from prismrec.profile.store import ConcurrentUpdateError, Event, ProfileStore, StoredState

log = logging.getLogger(__name__)

_UNREAD = object()  # for _current: the stored state is not read yet
MAX_RETRIES = 16  # compare-and-set attempts per user before the update is deferred
__all__ = ["CACHE_USERS", "MAX_RETRIES", "LiveProfiles"]


class LiveProfiles:
    """Per-user model states over a ``ProfileStore``, updated as events arrive.

    ``source`` is a ``LiveBundle`` or anything with a ``live_bundle()`` method (a fitted
    ``Recommender``). Thread-safe: the store serializes writes, the model is only read, the
    in-memory caches are locked, and ``add_items`` swaps in a whole new ``Served``.
    """

    def __init__(self, source: LiveBundle | Any, store: ProfileStore) -> None:
        bundle = source if isinstance(source, LiveBundle) else _bundle_of(source)
        self.store = store
        self.served = Served(bundle).warm()
        # SQLite takes one writer at a time, and a thread that finds the file locked sleeps
        # (1, 2, 5, 10 ... ms back-off); threads of one process therefore take turns here.
        from prismrec.profile.sqlite_store import SQLiteStore

        self._writing = threading.Lock() if isinstance(store, SQLiteStore) else nullcontext()
        self._growing = threading.Lock()  # one add_items at a time
        self._io = States(store)

    # -- what is served now (one Served; read it once per request) --------------------------
    @property
    def bundle(self) -> LiveBundle:
        return self.served.bundle

    @property
    def model(self):
        return self.served.model

    @property
    def items(self):
        return self.served.items

    @property
    def users(self):
        return self.served.users

    @property
    def n_items(self) -> int:
        return self.served.n_items

    @property
    def checkpoint(self) -> str:
        return self.served.checkpoint

    @property
    def step_cost(self) -> str:
        return self.served.step_cost

    def __repr__(self) -> str:
        return f"LiveProfiles({self.model.name}, checkpoint={self.checkpoint!r}, {self.store!r})"

    # -- ingest ------------------------------------------------------------------------------
    def update(self, events: Sequence[Event] | pd.DataFrame) -> UpdateResult:
        """Log ``events`` and advance each of their users' states by their new events.

        ``events`` are ``Event`` records or a DataFrame with columns user, item, timestamp
        (unix seconds or date-times) and optionally event, value, event_id. The batch is
        validated whole: an invalid event raises ``DataError`` and nothing is stored.
        """
        batch = parse_events(events)
        s = self.served
        with self._writing:
            ingest_ = self.store.append_events(batch)  # validates the whole batch first
            users = list(dict.fromkeys(e.user for e in batch))
            folded, recomputed, updated, gave_up = self._advance(s, users, ingest_.tails)
        unknown = list(dict.fromkeys(e.item for e in batch if e.item not in s.item_index))
        return UpdateResult(ingest_.accepted, ingest_.duplicates, ingest_.late,
                            list(ingest_.late_users), unknown, updated, folded, recomputed,
                            gave_up, s.step_cost)

    def _advance(self, s: Served, users: list[str],
                 known: Mapping[str, tuple[int, list[Event]]] | None = None
                 ) -> tuple[int, list[str], list[str], list[str]]:
        """Fold every user's not yet folded log events; retry users that lost a race.

        One round costs at most three store round trips (states, log tails, compare-and-set
        writes) and one batched model step per event position; only losers go round again.
        """
        folded = 0
        updated: list[str] = []
        recomputed: list[str] = []
        pending = users
        for _ in range(MAX_RETRIES):
            if not pending:
                break
            stored = self.store.get_states(pending)
            plans = [p for p in engine.make_plans(
                s, self.store, pending, lambda u, st: self._io.usable(s, u, st),
                lambda u: self._io.initial(s, u), stored, known) if p is not None]
            known = None  # a retry reads what the winner of the race left
            engine.run_steps(s, plans)
            written = self._io.write_many(s, plans)
            retry = []
            for plan in plans:
                if plan.user in written.conflicts:
                    retry.append(plan.user)
                elif plan.user in written.versions:
                    folded += plan.n_steps
                    updated.append(plan.user)
                    if plan.late:
                        recomputed.append(plan.user)
            if written.missing:  # forgotten while we computed: nothing of theirs to keep
                log.info("LiveProfiles: %d user(s) forgotten during their update",
                         len(written.missing))
            pending = retry
        if pending:
            log.warning("LiveProfiles: %d user(s) lost %d state races in a row; their events "
                        "are logged and will be folded later: %s", len(pending), MAX_RETRIES,
                        pending[:5])
        return folded, recomputed, updated, pending

    def _current(self, s: Served, user: str, stored: StoredState | None | object = _UNREAD
                 ) -> UserState | None:
        """The user's state with every logged event folded, or None if nothing is known.

        Reads never write. The common case is one store read (none where the caller read
        ``stored`` already: a batch's ``get_states``). A state behind the log (an
        ingest in flight, a crash) is brought up to date in memory for this read and stored
        by the update that logged the events (after a crash: ``rebuild_stale``). A state
        from another checkpoint, or one that cannot be decoded, is rebuilt in memory from
        the known history and the log (O(history), once: kept until stored) and written by
        the writer: ``store_pending`` (the service runs it off the event loop), the user's
        next update, or ``rebuild_stale``.
        """
        if stored is _UNREAD:
            stored = self.store.get_state(user)
        st = self._io.usable(s, user, stored)
        if st is None and stored is not None:
            st = self._io.rebuilt(s, user, stored)
        if st is not None and st.n_logged >= (
                stored.logged if stored.logged is not None else self.store.event_count(user)):
            return st
        if stored is None and self.store.event_count(user) == 0:
            return None if s.known_row(user) is None else self._io.initial(s, user)
        (plan,) = engine.make_plans(s, self.store, [user],
                                    lambda u, x: self._io.usable(s, u, x),
                                    lambda u: self._io.initial(s, u), {user: stored})
        if plan is None:  # folded by a writer meanwhile
            return self._io.usable(s, user, self.store.get_state(user))
        engine.run_steps(s, [plan])
        if plan.rebuilt:
            self._io.keep_rebuilt(s, user, stored, plan.state)
        return plan.state

    def pending_writes(self) -> int:
        """States that reads rebuilt in memory and ``store_pending`` has yet to write."""
        return self._io.pending()

    def store_pending(self) -> list[str]:
        """Write the states reads rebuilt (the writer's job, never a read's); returns the
        users written. Safe to run beside updates: each write is compare-and-set."""
        with self._writing:
            return self._io.store_pending(self.served)

    # -- rebuilds and forgetting -------------------------------------------------------------
    def rebuild(self, user: str) -> bool:
        """Recompute the user's state from their known history and whole log, in time order.

        Folds late events where they belong and replaces a state from another checkpoint.
        Returns False when the user has no logged events (there is nothing to store).
        """
        s = self.served
        for _ in range(MAX_RETRIES):
            with self._writing:
                stored = self.store.get_state(user)
                plan = engine.rebuild_plan(s, user, stored.version if stored else 0,
                                           self.store.events(user))
                if plan is None:
                    return False
                try:
                    self.store.put_state(user, self._io.encoded(s, plan.state),
                                         expected_version=plan.version)
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

        The known history inside the checkpoint is part of the model and goes only with
        retraining: a user known from it starts from it again at their next event.
        """
        user = lookup_id(user, "user")  # the id as stored (NFC)
        self._io.forget(user)
        return self.store.forget(user)

    # -- reading -----------------------------------------------------------------------------
    @torch.no_grad()
    def interests(self, user: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's interest vectors (K, D) float32 and weights (K,) float64 now.

        For models built with an interest head (``interests=K``). Recurrent models read them
        from the stored state alone (O(K D)); SASRec recomputes them over its window. None
        when nothing is known about the user yet.
        """
        s = self.served
        if s.model.head is None:
            raise ValueError(f"this {s.model.name} model has no interest head: build it with "
                             "interests=K (K >= 2)")
        st = self._current(s, user)
        if st is None or st.n_folded == 0:
            return None
        return engine.interests_of(s, st)

    def known_user(self, user: str) -> bool:
        """True if the checkpoint holds a history for ``user``."""
        return user in self.served.users

    def item_known(self, item: str) -> bool:
        return item in self.served.item_index

    def recommend(self, user: str, k: int = 10, *, filter_seen: bool = True,
                  exclude: Sequence[str] | None = None, diversity: float = 0.0) -> pd.DataFrame:
        """Top-``k`` items for ``user`` from their stored state, as a DataFrame.

        Columns: rank, item, score, because (the recent item most similar to the
        recommendation by item-embedding cosine, or None), similarity. ``frame.attrs``:
        ``fallback`` is ``"popular"`` when the user has no usable history (unknown to the
        model and no logged event of a known item): the items are then the most popular of
        the known histories and ``score`` is their count; otherwise None. See
        ``recommendations`` for the arguments.
        """
        return self.recommendations(user, k, filter_seen=filter_seen, exclude=exclude,
                                    diversity=diversity).to_frame()

    def recommendations(self, user: str, k: int = 10, *, filter_seen: bool = True,
                        exclude: Sequence[str] | None = None,
                        diversity: float = 0.0) -> Recommendations:
        """Top-``k`` items for ``user`` as a typed record (what the service answers with).

        Seen items (the full known history and logged events) are left out with
        ``filter_seen``; ``exclude`` lists more item ids to leave out (ids the model does
        not know are ignored). ``diversity`` in [0, 1] re-ranks the top candidates (4k, at
        least k + 20) by maximal marginal relevance over item-embedding cosine: 0 keeps the
        model's order. A bundle with an item-item part blends it in (``scoring.blended``).
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
        three steps are also callable one by one: ``start_recommendations``.
        """
        batch = self.start_recommendations(requests)
        batch.score()
        return batch.results()

    def start_recommendations(self, requests: Sequence[dict[str, Any]]) -> RecommendationBatch:
        """The first step of ``recommendations_many``: check each request, read its user's
        state (one ``get_states`` for a batch) and banned items (store reads). ``score()``
        and ``results()`` on the returned batch finish it; ``score()`` -- torch work that
        releases the GIL -- may run on another thread."""
        s = self.served
        out: list[Recommendations | Exception | None] = [None] * len(requests)
        scored: list[Scored] = []
        states = self._states_of(requests)
        for j, req in enumerate(requests):
            try:
                r = self._prepare(s, j, states, **req)
                if r.state is None or r.state.n_folded == 0:
                    out[j] = compose.popular(s, r.user, r.k, r.banned)
                else:
                    scored.append(r)
            except Exception as exc:  # handed back to its own request
                out[j] = exc
        return RecommendationBatch(s, out, scored)

    def _states_of(self, requests: Sequence[dict[str, Any]]) -> dict[str, StoredState] | None:
        """The stored states of a batch's users, one store read (``get_states``); None for
        a single request, or where the batch read fails (an invalid id, the store down):
        each request then reads its own and meets its own error."""
        if len(requests) < 2:
            return None
        try:
            return self.store.get_states([r["user"] for r in requests])
        except Exception:
            return None

    def _prepare(self, s: Served, slot: int, states: dict[str, StoredState] | None,
                 user: str, k: int = 10, filter_seen: bool = True,
                 exclude: Sequence[str] | None = None, diversity: float = 0.0) -> Scored:
        """Check one request's arguments; the user's current state and banned items
        (``states``: the batch's stored states, read already; None: read here)."""
        k, diversity = check_k(k), check_diversity(diversity)
        st = self._current(s, user, _UNREAD if states is None
                           else states.get(lookup_id(user, "user")))
        bag = None
        if s.bundle.item_item is not None and st is not None and st.n_folded:
            bag = engine.history_bag(s, user, self.store.events(user))
        return Scored(slot, user, k, diversity, st,
                      banned_items(s, user, st, filter_seen, exclude), bag)

    def similar_items(self, item: str, k: int = 10) -> pd.DataFrame:
        """Items nearest to ``item`` by cosine of the model's output item vectors."""
        return compose.similar_items(self.served, item, check_k(k))

    def profile(self, user: str, recent: int = RECENT) -> LiveProfile:
        """What is stored about one user (no model work, no writes).

        ``last_event_time`` is the latest of the log tail, the stored state and the known
        history; ``recent_items`` are the last items the model folded (known history
        included), ``recent_events`` the log tail (unknown items included).
        """
        s = self.served
        stored = self.store.get_state(user)
        n = self.store.event_count(user)
        tail = self.store.events(user, since_seq=max(0, n - recent)) if n else []
        row = s.known_row(user)
        st = self._io.usable(s, user, stored)
        if st is None and stored is not None:  # rebuilt by a read, not yet stored
            st = self._io.rebuilt(s, user, stored)
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
            recent_items=s.items.ids(recent_idx[-recent:]) if recent > 0 else [],
            checkpoint=s.checkpoint,
            state_checkpoint=None if stored is None else stored.checkpoint,
            state_version=0 if stored is None else stored.version,
            state_events=0 if stored is None else stored.n_events,
            needs_rebuild=bool(stored is not None and stored.needs_rebuild),
            updated_at=None if stored is None else stored.updated_at)

    # -- items -------------------------------------------------------------------------------
    def add_items(self, rows: pd.DataFrame | Any, encoder: Any = None) -> list[str]:
        """Add or re-encode catalogue items from their text (``LiveBundle.grow``).

        A new bundle is built beside the one serving, then swapped in whole: a request in
        flight finishes on the old model, vocabulary and item table; the next one starts on
        the new. The fingerprint changes, so each user's stored state is rebuilt from their
        log at their next update (once, O(history)), which also folds logged events of items
        that were unknown until now. Returns the new item ids.
        """
        with self._growing:
            old = self.served
            if old.bundle.grow is None:
                raise ValueError("this bundle cannot add items: it was made without a text "
                                 "path (Recommender.live_bundle() makes one that can)")
            bundle, added = old.bundle.grow(rows, encoder)
            served = Served(bundle).warm()
            self.served = served  # one assignment: readers see the old or the new, whole
        log.info("LiveProfiles: added %d item(s); catalogue now %d items, checkpoint %s",
                 len(added), served.n_items, served.checkpoint)
        return added


def _bundle_of(source: Any) -> LiveBundle:
    make = getattr(source, "live_bundle", None)
    if make is None:
        raise TypeError(f"LiveProfiles takes a LiveBundle or a fitted Recommender, got "
                        f"{type(source).__name__}")
    return make()
