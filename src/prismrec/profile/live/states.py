"""Users' states between the store and the model: decoding with caches, compare-and-set
writes, and the states rebuilt in memory by reads that the writer stores later."""

from __future__ import annotations

import threading
from collections import OrderedDict

from prismrec.profile.live import engine
from prismrec.profile.live.bundle import Served
from prismrec.profile.live.state import UserState, decode_state, encode_state
from prismrec.profile.store import (
    ConcurrentUpdateError,
    ProfileStore,
    PutStatesResult,
    StatePut,
    StoredState,
)

CACHE_USERS = 20_000  # decoded states kept in memory per process (~1-3 KB each)


class States:
    """The state side of ``LiveProfiles``: one per service, thread-safe (one lock)."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._decoded: OrderedDict[str, tuple[bytes, UserState]] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], UserState] = OrderedDict()
        # reads that rebuilt a state in memory: (checkpoint, stored version, state) per user,
        # stored later by the writer (``store_pending``), never by the read itself
        self._rebuilt: OrderedDict[str, tuple[str, int, UserState]] = OrderedDict()

    def usable(self, s: Served, user: str, stored: StoredState | None) -> UserState | None:
        """The decoded stored state if this bundle computed it, else None."""
        if stored is None or stored.checkpoint != s.checkpoint:
            return None
        with self._lock:  # keyed on the exact bytes (which hold no checkpoint): checked above
            hit = self._decoded.get(user)
            if hit is not None and hit[0] == stored.blob:
                self._decoded.move_to_end(user)
                return hit[1]
        st = decode_state(user, stored.blob, s.shape)
        if st is None or st.n_logged != stored.n_events:
            return None
        self._remember(user, stored.blob, st)
        return st

    def _remember(self, user: str, blob: bytes, st: UserState) -> None:
        with self._lock:
            self._decoded[user] = (blob, st)
            self._decoded.move_to_end(user)
            _trim(self._decoded)

    def initial(self, s: Served, user: str) -> UserState:
        """The state before any logged event (cached per checkpoint): after the user's full
        known history, or empty."""
        key = (s.checkpoint, user)
        with self._lock:
            cached = self._known.get(key)
            if cached is not None:
                self._known.move_to_end(key)
                return cached
        st = engine.known_state(s, user)
        with self._lock:
            self._known[key] = st
            _trim(self._known)
        return st

    def encoded(self, s: Served, st: UserState) -> StoredState:
        """The stored form of a state that folds its first ``n_logged`` log events in time
        order (the engine's rules): it never needs a rebuild."""
        return StoredState(checkpoint=s.checkpoint, blob=encode_state(st),
                           last_timestamp=float(st.last_ts) if st.n_folded else 0.0,
                           n_events=st.n_logged, needs_rebuild=False)

    def write_many(self, s: Served, plans: list[engine.Plan]) -> PutStatesResult:
        """Store every plan's state in one ``put_states`` (compare-and-set per user)."""
        puts = [StatePut(p.user, self.encoded(s, p.state),
                         expected_version=p.version) for p in plans]
        result = self.store.put_states(puts)
        for plan, put in zip(plans, puts, strict=True):
            version = result.versions.get(plan.user)
            if version is not None:
                plan.version = version
                self._remember(plan.user, put.state.blob, plan.state)
                with self._lock:
                    self._rebuilt.pop(plan.user, None)
        return result

    # -- states rebuilt by reads --------------------------------------------------------------
    def rebuilt(self, s: Served, user: str, stored: StoredState) -> UserState | None:
        """A state a read rebuilt for this stored version and checkpoint, if still pending."""
        with self._lock:
            hit = self._rebuilt.get(user)
        if hit is None or hit[0] != s.checkpoint or hit[1] != stored.version:
            return None
        return hit[2]

    def keep_rebuilt(self, s: Served, user: str, stored: StoredState, st: UserState) -> None:
        with self._lock:
            self._rebuilt[user] = (s.checkpoint, stored.version, st)
            _trim(self._rebuilt)

    def pending(self) -> int:
        """How many states rebuilt by reads wait for ``store_pending``."""
        with self._lock:
            return len(self._rebuilt)

    def store_pending(self, s: Served) -> list[str]:
        """Write the states reads rebuilt (compare-and-set on the version they were built
        from: one that changed meanwhile was rewritten by an update, and is dropped)."""
        with self._lock:
            todo = list(self._rebuilt.items())
        done = []
        for user, (checkpoint, version, st) in todo:
            if checkpoint == s.checkpoint:
                try:
                    self.store.put_state(user, self.encoded(s, st),
                                         expected_version=version)
                    done.append(user)
                except ConcurrentUpdateError:
                    pass
            with self._lock:
                hit = self._rebuilt.get(user)
                if hit is not None and hit[2] is st:
                    del self._rebuilt[user]
        return done

    def forget(self, user: str) -> None:
        with self._lock:
            self._decoded.pop(user, None)
            self._rebuilt.pop(user, None)
            for key in [k for k in self._known if k[1] == user]:
                del self._known[key]


def _trim(cache: OrderedDict) -> None:
    while len(cache) > CACHE_USERS:
        cache.popitem(last=False)
