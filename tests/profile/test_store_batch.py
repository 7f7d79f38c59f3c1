"""Batched store operations (get_states, put_states, events_since), run against every backend:
a real SQLite file and a real redis-server on 127.0.0.1 (skipped only when not installed)."""

from __future__ import annotations

import threading

import pytest

from prismrec.errors import DataError
from prismrec.profile import Event, StoredState, open_store
from prismrec.profile.store import PutStatesResult, StatePut


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'profiles.db'}"
    else:
        url = request.getfixturevalue("redis_url")
        import redis

        with redis.Redis.from_url(url) as client:
            client.flushdb()
    with open_store(url) as s:
        yield s


def ev(user: str, item: str, t: float, event_id: str | None = None) -> Event:
    return Event(user=user, item=item, timestamp=t, event_id=event_id)


def state(n_events: int, blob: bytes = b"state", **kw) -> StoredState:
    return StoredState(checkpoint="ckpt-a", blob=blob, last_timestamp=float(n_events),
                       n_events=n_events, **kw)


def logged(store, users: dict[str, int]) -> None:
    """Log `n` events for each user."""
    store.append_events([ev(u, f"i{j}", float(j)) for u, n in users.items() for j in range(n)])


# -- get_states ---------------------------------------------------------------------------------


def test_get_states_equals_get_state_per_user_and_leaves_out_users_without_one(store):
    logged(store, {"ann": 2, "bob": 1, "cy": 1})
    store.put_state("ann", state(2, blob=b"a"))
    store.put_state("bob", state(1, blob=b"b"))
    store.put_state("bob", state(1, blob=b"b2"))
    got = store.get_states(["ann", "bob", "cy", "nobody"])
    assert list(got) == ["ann", "bob"]
    assert got == {"ann": store.get_state("ann"), "bob": store.get_state("bob")}
    assert (got["bob"].blob, got["bob"].version) == (b"b2", 2)


def test_get_states_reports_the_late_event_flag(store):
    logged(store, {"ann": 2})
    store.put_state("ann", state(2))
    store.append_events([ev("ann", "old", 0.5)])
    assert store.get_states(["ann"])["ann"].needs_rebuild is True


def test_get_states_of_nobody_is_empty(store):
    assert store.get_states([]) == {}


def test_get_states_refuses_a_bare_string(store):
    with pytest.raises(DataError, match="list of user ids"):
        store.get_states("ann")


def test_get_states_of_many_users_crosses_chunk_boundaries(store):
    users = {f"u{k:04d}": 1 for k in range(1203)}
    logged(store, users)
    store.put_states([StatePut(u, state(1, blob=u.encode())) for u in users])
    got = store.get_states(list(users))
    assert len(got) == 1203 and all(got[u].blob == u.encode() for u in users)


# -- preferences_of -----------------------------------------------------------------------------


def test_preferences_of_equals_preferences_per_user_in_request_order(store):
    logged(store, {"ann": 1, "bob": 1, "cy": 1})
    store.set_preference("bob", 3, "mute")
    store.set_preference("bob", 1, "boost")
    store.set_preference("ann", 0, "mute")
    users = ["cy", "bob", "nobody", "ann", "bob"]
    got = store.preferences_of(users)
    assert list(got) == ["cy", "bob", "nobody", "ann"]  # duplicates once, order kept
    assert got == {u: store.preferences(u) for u in users}
    assert [p.interest for p in got["bob"]] == [1, 3] and got["cy"] == []


def test_preferences_of_reads_ids_in_their_stored_form_and_crosses_chunks(store):
    nfd, nfc = "Jose\u0301", "Jos\u00e9"
    users = [f"u{k:04d}" for k in range(1203)] + [nfc]
    logged(store, dict.fromkeys(users, 1))
    store.set_preference(nfc, 2, "boost")
    store.set_preference("u1202", 1, "mute")
    got = store.preferences_of(users[:-1] + [nfd])
    assert len(got) == 1204 and got["u1202"][0].steer == "mute"
    assert [p.interest for p in got[nfc]] == [2]


def test_preferences_of_refuses_a_bare_string(store):
    with pytest.raises(DataError, match="preferences_of takes a list of user ids"):
        store.preferences_of("ann")


# -- events_since -------------------------------------------------------------------------------


def test_events_since_gives_each_users_tail_in_ingest_order(store):
    batch = [ev("ann", "i1", 5.0), ev("bob", "i9", 1.0), ev("ann", "i2", 6.0, "e2"),
             ev("ann", "i3", 7.5)]
    store.append_events(batch)
    tails = store.events_since({"ann": 1, "bob": 0, "cy": 0, "dee": 3})
    assert tails == {"ann": [batch[2], batch[3]], "bob": [batch[1]], "cy": [], "dee": []}
    assert tails["ann"] == store.events("ann", since_seq=1)


def test_events_since_past_the_end_is_empty(store):
    logged(store, {"ann": 2})
    assert store.events_since({"ann": 2}) == {"ann": []}
    assert store.events_since({"ann": 10}) == {"ann": []}


def test_events_since_refuses_bad_positions(store):
    with pytest.raises(DataError, match="since_seq"):
        store.events_since({"ann": -1})
    with pytest.raises(DataError, match="mapping"):
        store.events_since(["ann"])


def test_events_since_of_many_users_crosses_chunk_boundaries(store):
    users = {f"u{k:04d}": 2 for k in range(1203)}
    logged(store, users)
    tails = store.events_since(dict.fromkeys(users, 1))
    assert all([e.item for e in tails[u]] == ["i1"] for u in users)


# -- put_states -------------------------------------------------------------------------------


def test_put_states_writes_every_user_with_new_versions(store):
    logged(store, {"ann": 2, "bob": 1})
    store.put_state("bob", state(1))
    result = store.put_states([StatePut("ann", state(2, blob=b"a"), expected_version=0),
                               StatePut("bob", state(1, blob=b"b"), expected_version=1)])
    assert result == PutStatesResult({"ann": 1, "bob": 2}, {}, [])
    assert store.get_state("ann").blob == b"a" and store.get_state("bob").blob == b"b"
    assert store.stats()["states"] == 2


def test_a_conflict_skips_only_that_user(store):
    logged(store, {"ann": 1, "bob": 1})
    store.put_state("ann", state(1, blob=b"theirs"))
    result = store.put_states([StatePut("ann", state(1, blob=b"mine"), expected_version=0),
                               StatePut("bob", state(1, blob=b"b"), expected_version=0)])
    assert result.versions == {"bob": 1} and result.conflicts == {"ann": 1}
    assert store.get_state("ann").blob == b"theirs"
    assert store.get_state("bob").blob == b"b"


def test_a_forgotten_user_is_reported_missing_and_gets_no_state(store):
    logged(store, {"ann": 1, "bob": 1})
    version = store.put_state("ann", state(1))
    store.forget("ann")
    result = store.put_states([StatePut("ann", state(1), expected_version=version),
                               StatePut("bob", state(1))])
    assert result.missing == ["ann"] and result.versions == {"bob": 1}
    assert store.get_state("ann") is None and store.stats()["states"] == 1


def test_a_state_claiming_unlogged_events_rejects_the_whole_batch(store):
    logged(store, {"ann": 1, "bob": 1})
    with pytest.raises(DataError, match="claims n_events=5 but only 1"):
        store.put_states([StatePut("ann", state(1)), StatePut("bob", state(5))])
    assert store.get_states(["ann", "bob"]) == {}


@pytest.mark.parametrize("bad", [
    [StatePut("ann", state(1)), StatePut("ann", state(1))],
    [StatePut("ann", StoredState(checkpoint="c", blob="text", last_timestamp=1.0, n_events=1))],
    [StatePut("ann", state(1), expected_version=-1)],
    [("ann", state(1))],
])
def test_an_invalid_entry_rejects_the_whole_batch(store, bad):
    logged(store, {"ann": 1, "bob": 1})
    with pytest.raises(DataError):
        store.put_states([StatePut("bob", state(1)), *bad])
    assert store.get_states(["ann", "bob"]) == {}


def test_put_states_of_nothing_writes_nothing(store):
    assert store.put_states([]) == PutStatesResult({}, {}, [])


def test_concurrent_batched_read_modify_write_loses_no_update(store):
    users = ["ann", "bob", "cy"]
    logged(store, dict.fromkeys(users, 1))
    store.put_states([StatePut(u, state(1, blob=b"0")) for u in users])
    errors = []

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                pending = users
                while pending:
                    current = store.get_states(pending)
                    result = store.put_states([
                        StatePut(u, state(1, blob=str(int(current[u].blob) + 1).encode()),
                                 expected_version=current[u].version) for u in pending])
                    pending = list(result.conflicts)
        except Exception as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(30,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = store.get_states(users)
    assert all(int(final[u].blob) == 90 and final[u].version == 91 for u in users)


# -- LiveProfiles on top: an ingest batch costs O(1) store round trips -------------------------


class CountingStore:
    """The real store, counting the calls made to it by name."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return counted


@pytest.mark.parametrize("n_users", [10, 100])
def test_an_ingest_batch_costs_the_same_store_calls_for_10_or_100_users(store, tiny_checkpoint,
                                                                        n_users):
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender

    counting = CountingStore(store)
    live = LiveProfiles(Recommender.load(tiny_checkpoint), counting)
    users = [f"u{k:04d}" for k in range(n_users // 2)] + [f"new-{k}" for k in range(n_users // 2)]
    live.update([ev(u, "i00001", 1.7e9, f"first-{u}") for u in users])  # first sight
    counting.calls.clear()
    batch = [ev(users[j % n_users], f"i{j % 60:05d}", 1.7e9 + 1 + j, f"b{j}") for j in range(100)]
    result = live.update(batch)
    assert result.folded == 100 and len(result.users_updated) == n_users
    # the log tails come back from the ingest: no events_since round trip
    assert counting.calls == {"append_events": 1, "get_states": 1, "put_states": 1}
    assert store.get_state(users[-1]).n_events == 1 + 100 // n_users
