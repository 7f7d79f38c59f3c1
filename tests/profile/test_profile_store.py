"""The ProfileStore contract, run against every backend: a real SQLite file and a real
redis-server started for the session on 127.0.0.1 (skipped only when it is not installed)."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from prismrec.errors import DataError, UnknownIdError
from prismrec.profile import (
    ConcurrentUpdateError,
    Event,
    ProfileStore,
    StoredState,
    StoreError,
    StoreUnavailableError,
    open_store,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'profiles.db'}"
    server = request.getfixturevalue("redis_url")
    import redis

    with redis.Redis.from_url(server) as client:
        client.flushdb()
    return server


@pytest.fixture
def store(url):
    with open_store(url) as s:
        yield s


def ev(user: str, item: str, t: float, event_id: str | None = None, **kw) -> Event:
    return Event(user=user, item=item, timestamp=t, event_id=event_id, **kw)


def state(n_events: int, checkpoint: str = "ckpt-a", blob: bytes = b"state", **kw) -> StoredState:
    return StoredState(checkpoint=checkpoint, blob=blob, last_timestamp=float(n_events),
                       n_events=n_events, **kw)


# -- the event log ----------------------------------------------------------------------------


def test_open_store_gives_a_profile_store(store):
    assert isinstance(store, ProfileStore)


def test_events_come_back_per_user_in_ingest_order(store):
    batch = [ev("ann", "i1", 5.0), ev("bob", "i9", 1.0), ev("ann", "i2", 6.0, "e2"),
             ev("ann", "i3", 7.5, event="buy", value=19.99)]
    result = store.append_events(batch)
    assert (result.accepted, result.duplicates, result.late) == (4, 0, 0)
    assert store.events("ann") == [batch[0], batch[2], batch[3]]
    assert store.events("bob") == [batch[1]]
    assert store.event_count("ann") == 3
    assert store.events("ann", since_seq=2) == [batch[3]]
    assert store.events("nobody") == [] and store.event_count("nobody") == 0


def test_timestamps_and_values_round_trip_exactly(store):
    t = 1_700_000_000.123456789
    store.append_events([ev("ann", "i1", t, value=0.1 + 0.2)])
    (got,) = store.events("ann")
    assert got.timestamp == t and got.value == 0.1 + 0.2


def test_unicode_ids_round_trip(store):
    batch = [ev("zoë 👩🚀 %zz", "película ñ", 1.0, "id-é")]
    store.append_events(batch)
    assert store.events("zoë 👩🚀 %zz") == batch
    assert list(store.users()) == ["zoë 👩🚀 %zz"]


NFC, NFD = "jos\u00e9", "jose\u0301"  # one name, composed and decomposed


def test_nfc_and_nfd_spellings_are_one_user_read_and_erased_by_either(store):
    store.append_events([ev(NFD, "i1", 1.0, "e1"), ev(NFC, "i2", 2.0, "e2")])
    assert list(store.users()) == [NFC]
    assert [e.user for e in store.events(NFD)] == [NFC, NFC]
    assert store.event_count(NFC) == 2
    assert store.append_events([ev(NFC, "i1", 1.0, "e1")]).duplicates == 1
    assert store.forget(NFD) is True
    assert store.event_count(NFC) == 0 and list(store.users()) == []


@pytest.mark.parametrize("bad", [
    "alice/smith", " alice", "alice ", "alice\t", "al\rice", "al\nice", "al\x7fice",
    "\u202eecila", "al\u2066ice", "al\u200bice", "al\u200dice", "\ufeffalice",
    "al\u2028ice", "al\u00adice", "\u3000alice"])
def test_ids_breaking_the_rule_are_refused_whole_and_name_the_problem(store, bad):
    with pytest.raises(DataError, match="user"):
        store.append_events([ev("ann", "i1", 1.0), ev(bad, "i1", 1.0)])
    with pytest.raises(DataError, match="event_id"):
        store.append_events([ev("ann", "i1", 1.0, event_id=bad)])
    assert store.event_count("ann") == 0 and list(store.users()) == []


def test_same_event_id_for_two_users_is_two_events(store):
    first = store.append_events([ev("ann", "i1", 1.0, "shared-id")])
    other = store.append_events([ev("bob", "i2", 2.0, "shared-id"),
                                 ev("bob", "i3", 3.0, "shared-id")])
    assert (first.accepted, other.accepted, other.duplicates) == (1, 1, 1)
    assert [e.item for e in store.events("bob")] == ["i2"]
    store.forget("ann")
    assert store.append_events([ev("bob", "i4", 4.0, "shared-id")]).duplicates == 1
    assert store.append_events([ev("ann", "i5", 5.0, "shared-id")]).accepted == 1


def test_same_event_id_is_stored_once(store):
    first = store.append_events([ev("ann", "i1", 1.0, "e1"), ev("ann", "i2", 2.0, "e2")])
    again = store.append_events([ev("ann", "i2", 2.0, "e2"), ev("ann", "i3", 3.0, "e3")])
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (again.accepted, again.duplicates) == (1, 1)
    assert [e.event_id for e in store.events("ann")] == ["e1", "e2", "e3"]


def test_ingest_reports_each_users_appended_tail_as_the_log_holds_it(store):
    store.append_events([ev("ann", "i1", 1.0, "e1"), ev("bob", "i1", 1.0, "b1")])
    result = store.append_events([ev("ann", "i1", 1.0, "e1"), ev("bob", "i2", 2.0, "b2"),
                                  ev("ann", "i3", 3.0, "e3"), ev("cy", "i4", 4.0),
                                  ev("ann", "i5", 0.5, "e5"), ev("bob", "i2", 2.0, "b2")])
    assert set(result.tails) == {"ann", "bob", "cy"}  # duplicates are not in any tail
    for user, (start, events) in result.tails.items():
        assert store.events(user, since_seq=start) == events
    assert [start for start, _ in (result.tails[u] for u in ("ann", "bob", "cy"))] == [1, 1, 0]


def test_repeated_event_id_within_one_batch_is_stored_once(store):
    result = store.append_events([ev("ann", "i1", 1.0, "e1"), ev("ann", "i1", 1.0, "e1")])
    assert (result.accepted, result.duplicates) == (1, 1)
    assert store.event_count("ann") == 1


def test_events_without_id_are_always_accepted(store):
    store.append_events([ev("ann", "i1", 1.0)])
    result = store.append_events([ev("ann", "i1", 1.0)])
    assert (result.accepted, result.duplicates) == (1, 0)
    assert store.event_count("ann") == 2


def test_late_event_is_stored_counted_and_flags_the_state(store):
    store.append_events([ev("ann", "i1", 10.0), ev("ann", "i2", 20.0)])
    store.put_state("ann", state(2))
    assert store.get_state("ann").needs_rebuild is False
    result = store.append_events([ev("ann", "i3", 15.0), ev("bob", "i1", 1.0)])
    assert (result.accepted, result.late, result.late_users) == (2, 1, ["ann"])
    assert [e.item for e in store.events("ann")] == ["i1", "i2", "i3"]
    assert store.get_state("ann").needs_rebuild is True
    assert "ann" in store.stale_users("ckpt-a")


def test_event_equal_to_latest_time_is_not_late(store):
    store.append_events([ev("ann", "i1", 10.0)])
    assert store.append_events([ev("ann", "i2", 10.0)]).late == 0


def test_out_of_order_events_within_one_batch_are_late(store):
    result = store.append_events([ev("ann", "i1", 20.0), ev("ann", "i2", 10.0),
                                  ev("ann", "i3", 15.0), ev("ann", "i4", 30.0)])
    assert (result.accepted, result.late, result.late_users) == (4, 2, ["ann"])


def test_duplicate_of_an_old_event_is_not_late(store):
    store.append_events([ev("ann", "i1", 10.0, "e1"), ev("ann", "i2", 20.0)])
    assert store.append_events([ev("ann", "i1", 10.0, "e1")]).late == 0


def test_rebuilt_state_clears_the_late_flag(store):
    store.append_events([ev("ann", "i1", 10.0), ev("ann", "i2", 5.0)])
    store.put_state("ann", state(1))  # folded in only the first event
    assert store.get_state("ann").needs_rebuild is True
    store.put_state("ann", state(2))  # a rebuild from the whole (time-sorted) log
    assert store.get_state("ann").needs_rebuild is False
    assert store.stale_users("ckpt-a") == []


BAD_EVENTS = {
    "nan timestamp": ev("ann", "i9", math.nan),
    "infinite timestamp": ev("ann", "i9", math.inf),
    "empty user": ev("", "i9", 3.0),
    "empty item": ev("ann", "", 3.0),
    "non-string item": Event(user="ann", item=9, timestamp=3.0),
    "nan value": ev("ann", "i9", 3.0, value=math.nan),
    "timestamp as text": Event(user="ann", item="i9", timestamp="yesterday"),
    "empty event id": ev("ann", "i9", 3.0, ""),
    "NUL in user": ev("a\x00b", "i9", 3.0),
}


@pytest.mark.parametrize("bad", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_rejects_the_whole_batch(store, bad):
    store.append_events([ev("ann", "i1", 1.0, "e1")])
    batch = [ev("ann", "i2", 2.0, "e2"), ev("carl", "i3", 2.0), bad]
    with pytest.raises(DataError, match="event 2 of 3"):
        store.append_events(batch)
    assert store.events("ann") == [ev("ann", "i1", 1.0, "e1")]
    assert store.event_count("carl") == 0
    assert sorted(store.users()) == ["ann"]
    assert store.append_events([ev("ann", "i2", 2.0, "e2")]).accepted == 1  # e2 never stored


def test_a_batch_must_be_a_list_of_events(store):
    with pytest.raises(DataError, match="sequence"):
        store.append_events(ev("ann", "i1", 1.0))
    with pytest.raises(DataError, match="expected an Event"):
        store.append_events([("ann", "i1", 1.0)])


def test_empty_batch_changes_nothing(store):
    assert store.append_events([]).accepted == 0
    assert list(store.users()) == []


def test_users_lists_each_user_with_events_once(store):
    store.append_events([ev(f"u{i % 7}", "x", float(i)) for i in range(30)])
    assert sorted(store.users()) == [f"u{i}" for i in range(7)]


# -- states -----------------------------------------------------------------------------------


def test_state_round_trips_with_store_assigned_version(store):
    store.append_events([ev("ann", "i1", 1.0), ev("ann", "i2", 2.5)])
    blob = bytes(range(256)) * 3
    before = time.time()
    version = store.put_state("ann", StoredState(checkpoint="ckpt-a", blob=blob,
                                                 last_timestamp=2.5, n_events=2, version=99))
    got = store.get_state("ann")
    assert version == 1 and got.version == 1
    assert (got.checkpoint, got.blob, got.last_timestamp, got.n_events) == ("ckpt-a", blob, 2.5, 2)
    assert got.needs_rebuild is False
    assert before - 1 <= got.updated_at <= time.time() + 1
    assert store.get_state("bob") is None


def test_a_state_read_carries_the_log_length_of_the_same_snapshot(store):
    store.append_events([ev("ann", "i1", 1.0), ev("ann", "i2", 2.0)])
    store.put_state("ann", state(1, logged=99))  # ignored on a write
    store.append_events([ev("ann", "i3", 3.0)])
    assert store.get_state("ann").logged == 3
    assert store.get_states(["ann"])["ann"].logged == 3


def test_put_state_is_a_compare_and_set_on_the_version(store):
    store.append_events([ev("ann", "i1", 1.0)])
    assert store.put_state("ann", state(1), expected_version=0) == 1
    with pytest.raises(ConcurrentUpdateError, match="version 1, not the expected 0"):
        store.put_state("ann", state(1, blob=b"lost"), expected_version=0)
    assert store.put_state("ann", state(1, blob=b"second"), expected_version=1) == 2
    assert store.put_state("ann", state(1, blob=b"third")) == 3  # no check asked
    assert store.get_state("ann").blob == b"third"


def test_concurrent_read_modify_write_loses_no_update(store):
    store.append_events([ev("ann", "i1", 1.0)])
    store.put_state("ann", state(1, blob=b"0"))
    errors = []

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                while True:
                    current = store.get_state("ann")
                    new = replace(current, blob=str(int(current.blob) + 1).encode())
                    try:
                        store.put_state("ann", new, expected_version=current.version)
                        break
                    except ConcurrentUpdateError:
                        continue
        except Exception as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(40,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = store.get_state("ann")
    assert int(final.blob) == 120 and final.version == 121


def test_state_needs_logged_events(store):
    with pytest.raises(UnknownIdError, match="no logged events"):
        store.put_state("ghost", state(0))
    store.append_events([ev("ann", "i1", 1.0)])
    with pytest.raises(DataError, match="claims n_events=2 but only 1"):
        store.put_state("ann", state(2))
    with pytest.raises(DataError, match="bytes"):
        store.put_state("ann", StoredState(checkpoint="c", blob="text", last_timestamp=1.0,
                                           n_events=1))


def test_stale_users_after_a_checkpoint_change(store):
    store.append_events([ev(u, "i1", 1.0) for u in ("ann", "bob", "cid")])
    for u in ("ann", "bob", "cid"):
        store.put_state(u, state(1, checkpoint="ckpt-a"))
    assert store.stale_users("ckpt-a") == []
    assert store.stale_users("ckpt-b") == ["ann", "bob", "cid"]
    store.put_state("bob", state(1, checkpoint="ckpt-b"))
    assert store.stale_users("ckpt-b") == ["ann", "cid"]
    assert store.stale_users("ckpt-a") == ["bob"]


def test_stale_users_include_missing_flagged_and_lagging_states(store):
    store.append_events([ev(u, "i1", 1.0) for u in ("fresh", "nostate", "flagged", "behind")])
    store.put_state("fresh", state(1))
    store.put_state("flagged", state(1, needs_rebuild=True))
    store.put_state("behind", state(1))
    store.append_events([ev("behind", "i2", 2.0)])
    assert store.stale_users("ckpt-a") == ["behind", "flagged", "nostate"]


# -- forget -----------------------------------------------------------------------------------

SECRET = "zelda-7f3a"


def _sqlite_traces(url: str, needles: list[bytes]) -> list[str]:
    import sqlite3

    path = Path(url.removeprefix("sqlite:///"))
    found = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for cell in row:
                    raw = cell if isinstance(cell, bytes) else str(cell).encode()
                    found += [f"{table}: {cell!r}" for n in needles if n in raw]
    conn.close()
    for f in (path, path.with_name(path.name + "-wal")):
        if f.exists():
            found += [f"{f.name} holds {n!r}" for n in needles if n in f.read_bytes()]
    return found


def _redis_traces(url: str, needles: list[bytes]) -> list[str]:
    import redis

    found = []
    with redis.Redis.from_url(url) as r:
        for key in r.scan_iter(count=1000):
            kind = r.type(key)
            if kind == b"string":
                values = [r.get(key)]
            elif kind == b"list":
                values = r.lrange(key, 0, -1)
            elif kind == b"hash":
                values = [x for kv in r.hgetall(key).items() for x in kv]
            elif kind == b"set":
                values = list(r.smembers(key))
            else:
                raise AssertionError(f"unexpected key type {kind!r} for {key!r}")
            found += [f"key {key!r}" for n in needles if n in key]
            found += [f"{key!r}: {v!r}" for v in values for n in needles if n in v]
    return found


def test_forget_leaves_no_trace(store, url):
    others = [ev("ann", "i1", 1.0, "ann-e1"), ev("bob", "i2", 2.0)]
    mine = [ev(SECRET, f"{SECRET}-item", float(t), f"{SECRET}-e{t}") for t in range(50)]
    store.append_events(others[:1] + mine[:25])
    store.put_state(SECRET, state(25, blob=f"{SECRET}-blob".encode() * 10))
    store.append_events(mine[25:] + others[1:])
    store.put_state("ann", state(1))
    store.set_preference(SECRET, 1, "boost")
    store.set_preference("ann", 1, "mute")
    traces = _sqlite_traces if url.startswith("sqlite") else _redis_traces
    needles = [SECRET.encode()]
    assert traces(url, needles) != []  # the check can see the data while it is there

    assert store.forget(SECRET) is True

    assert traces(url, needles) == []
    assert store.events(SECRET) == [] and store.get_state(SECRET) is None
    assert SECRET not in set(store.users())
    assert store.events("ann") == others[:1] and store.get_state("ann").n_events == 1
    assert store.preferences(SECRET) == [] and len(store.preferences("ann")) == 1
    assert store.stats()["events"] == 2 and store.stats()["states"] == 1
    assert store.forget(SECRET) is False
    again = store.append_events(mine[:1])  # ids are free again: a new history may start
    assert (again.accepted, again.duplicates) == (1, 0)


def test_state_written_by_an_update_in_flight_cannot_outlive_forget(store):
    store.append_events([ev("ann", "i1", 1.0)])
    current = store.put_state("ann", state(1))
    store.forget("ann")
    with pytest.raises(UnknownIdError):
        store.put_state("ann", state(1), expected_version=current)
    assert store.get_state("ann") is None


# -- preferences ------------------------------------------------------------------------------


def test_preferences_are_set_overwritten_cleared_and_kept_per_user(store):
    assert store.preferences("ann") == []
    store.set_preference("ann", 2, "mute")  # no logged events needed (a training user)
    store.set_preference("ann", 0, "boost")
    store.set_preference("bob", 2, "boost")
    assert [(p.interest, p.steer) for p in store.preferences("ann")] == [(0, "boost"),
                                                                         (2, "mute")]
    store.set_preference("ann", 2, "boost")
    store.set_preference("ann", 0, None)
    store.set_preference("ann", 7, None)  # clearing what is not there changes nothing
    (only,) = store.preferences("ann")
    assert (only.interest, only.steer) == (2, "boost") and only.updated_at > 0
    assert only.to_dict()["boost"] is True and only.to_dict()["mute"] is False
    assert [(p.interest, p.steer) for p in store.preferences("bob")] == [(2, "boost")]


@pytest.mark.parametrize("interest, steer", [(-1, "mute"), (True, "mute"), ("2", "mute"),
                                             (1.5, "mute"), (1, "hide"), (1, "")])
def test_a_bad_preference_is_refused_and_stores_nothing(store, interest, steer):
    with pytest.raises(DataError):
        store.set_preference("ann", interest, steer)
    assert store.preferences("ann") == []


def test_preferences_survive_reopening_and_forget_erases_them(url):
    with open_store(url) as first:
        first.set_preference("cal", 1, "mute")
    with open_store(url) as second:
        assert [(p.interest, p.steer) for p in second.preferences("cal")] == [(1, "mute")]
        assert second.forget("cal") is True  # preferences alone are something to erase
        assert second.preferences("cal") == []
        assert second.forget("cal") is False


# -- processes, lifecycle ---------------------------------------------------------------------

WRITER = """
import json, os, sys, time
from prismrec.profile import Event, open_store
url, go, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open_store(url) as store:
    while not os.path.exists(go):
        time.sleep(0.001)
    accepted = duplicates = 0
    for b in range(first, last, 25):
        batch = [Event("shared", f"i{k}", float(k), event_id=f"e{k}") for k in range(b, b + 25)]
        batch.append(Event("shared", "no-id", float(b)))
        result = store.append_events(batch)
        accepted += result.accepted
        duplicates += result.duplicates
print(json.dumps([accepted, duplicates]))
"""


@pytest.mark.slow
def test_two_processes_writing_one_user_lose_nothing_and_store_ids_once(store, url, tmp_path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(go), str(a), str(b)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a, b in ((0, 500), (250, 750))
    ]
    time.sleep(0.5)
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    totals = [json.loads(out) for out, _ in outputs]
    logged = store.events("shared")
    assert sum(t[0] for t in totals) == 750 + 40 == len(logged) == store.event_count("shared")
    assert sum(t[1] for t in totals) == 250
    ids = [e.event_id for e in logged if e.event_id is not None]
    assert sorted(ids) == sorted(f"e{k}" for k in range(750))


def test_data_survives_reopening(url):
    with open_store(url) as first:
        first.append_events([ev("ann", "i1", 1.0, "e1")])
        first.put_state("ann", state(1))
    with open_store(url) as second:
        assert second.events("ann") == [ev("ann", "i1", 1.0, "e1")]
        assert second.get_state("ann").version == 1
        assert second.append_events([ev("ann", "i1", 1.0, "e1")]).duplicates == 1


def test_stats_count_users_events_and_states(store):
    store.append_events([ev("ann", "i1", 1.0), ev("ann", "i2", 2.0), ev("bob", "i1", 1.0)])
    store.put_state("ann", state(2))
    stats = store.stats()
    assert (stats["users"], stats["events"], stats["states"]) == (2, 3, 1)
    assert stats["backend"] in ("sqlite", "redis")


def test_a_closed_store_refuses_work(url):
    with open_store(url) as s:
        s.append_events([ev("ann", "i1", 1.0)])
    with pytest.raises(StoreError, match="closed"):
        s.events("ann")


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["profiles.db", "mysql://db/x", "sqlite://host/x.db", "sqlite:///",
                                 "sqlite:///x.db?cache=big"])
def test_bad_url_names_the_accepted_forms(bad):
    with pytest.raises(StoreError, match="sqlite:///") as info:
        open_store(bad)
    assert bad in str(info.value) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", ["redis://127.0.0.1:6379/abc", "redis://127.0.0.1:1/0?colour=red"])
def test_bad_redis_url_is_named(bad):
    pytest.importorskip("redis", reason="redis-py is part of the serve extra")
    with pytest.raises(StoreError, match="accepted forms") as info:
        open_store(bad)
    assert bad in str(info.value)


def test_public_surface():
    import prismrec.profile as profile

    assert set(profile.__all__) == {
        "ConcurrentUpdateError", "Event", "IngestResult", "Preference", "ProfileStore",
        "StoreError", "StoreUnavailableError", "StoredState", "open_store",
    }
    assert all(hasattr(profile, name) for name in profile.__all__)


def test_unreachable_redis_is_reported_as_unavailable():
    pytest.importorskip("redis", reason="redis-py is part of the serve extra")
    with pytest.raises(StoreUnavailableError, match="cannot reach Redis"):
        open_store(f"redis://127.0.0.1:{_free_port()}/0")


def test_redis_prefix_keeps_two_stores_apart(redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    with open_store(redis_url + "?prefix=a:") as a, open_store(redis_url + "?prefix=b:") as b:
        a.append_events([ev("ann", "i1", 1.0, "e1")])
        assert b.append_events([ev("ann", "i1", 1.0, "e1")]).accepted == 1
        assert a.event_count("ann") == 1 == b.event_count("ann")
