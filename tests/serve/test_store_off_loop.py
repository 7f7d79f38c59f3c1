"""No synchronous store round trip runs on the event loop: a recommendation's store reads
happen on the scoring thread, and a state a read rebuilt is written by the writer thread.

The store is the real SQLite store; a subclass notes which thread each call ran on.
"""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from prismrec.profile import Event
from prismrec.profile.live import LiveProfiles
from prismrec.profile.sqlite_store import SQLiteStore
from prismrec.profile.store import StoredState
from prismrec.recommender import Recommender
from prismrec.serve import ServeSettings, create_app

T0 = 1_700_000_000.0


class NotingStore(SQLiteStore):
    """The SQLite store, noting the thread of every read and write."""

    calls: list[tuple[str, str]]

    def _note(self, name: str) -> None:
        self.calls.append((name, threading.current_thread().name))

    def get_state(self, user):
        self._note("get_state")
        return super().get_state(user)

    def get_states(self, users):
        self._note("get_states")
        return super().get_states(users)

    def preferences_of(self, users):
        self._note("preferences_of")
        return super().preferences_of(users)

    def events(self, user, **kw):
        self._note("events")
        return super().events(user, **kw)

    def events_since(self, since):
        self._note("events_since")
        return super().events_since(since)

    def event_count(self, user):
        self._note("event_count")
        return super().event_count(user)

    def put_state(self, user, state, **kw):
        self._note("put_state")
        return super().put_state(user, state, **kw)


def test_recommendation_store_reads_and_writes_stay_off_the_event_loop(tiny_checkpoint,
                                                                        tmp_path):
    rec = Recommender.load(tiny_checkpoint)
    store = NotingStore(tmp_path / "p.db")
    store.calls = []
    live = LiveProfiles(rec, store)
    live.update([Event("ann", "i00001", T0), Event("ann", "i00002", T0 + 1)])
    # a state from an older checkpoint: the read rebuilds it, the writer stores it
    store.put_state("ann", StoredState(checkpoint="older", blob=b"x", last_timestamp=T0,
                                       n_events=2))
    store.calls.clear()
    with TestClient(create_app(live, ServeSettings())) as client:
        loop_thread = client.portal.call(lambda: threading.current_thread().name)
        for user in ("ann", "u0001", "nobody"):
            reply = client.get(f"/v1/users/{user}/recommendations", params={"k": 3})
            assert reply.status_code == 200, reply.text
        deadline = time.monotonic() + 10
        while store.get_state("ann").checkpoint != live.checkpoint:
            assert time.monotonic() < deadline, "the rebuilt state was never stored"
            time.sleep(0.02)
    recommend_calls = [c for c in store.calls if c[1] != threading.current_thread().name]
    assert recommend_calls, "the routes made no store call at all"
    assert not [c for c in recommend_calls if c[1] == loop_thread], recommend_calls
    writes = [t for name, t in recommend_calls if name == "put_state"]
    assert writes and all(t.startswith("prismrec-store-pending") for t in writes)
    assert any(t.startswith("prismrec-score") for _, t in recommend_calls)
    prefs = [t for name, t in recommend_calls if name == "preferences_of"]
    assert len(prefs) == 3 and all(t.startswith("prismrec-score") for t in prefs)  # 1 a batch
    store.close()
