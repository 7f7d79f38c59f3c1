"""LiveProfiles rebuilds: late events, other checkpoints, interrupted updates, two writers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from prismrec.profile import Event, StoredState, open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def rec(tiny_checkpoint) -> Recommender:
    return Recommender.load(tiny_checkpoint)


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'live.db'}"
    server = request.getfixturevalue("redis_url")
    import redis

    with redis.Redis.from_url(server) as client:
        client.flushdb()
    return server


@pytest.fixture
def store(url):
    with open_store(url) as s:
        yield s


def top_scores(live: LiveProfiles, user: str) -> dict[str, float]:
    frame = live.recommend(user, k=len(live.items))
    return dict(zip(frame["item"], frame["score"], strict=True))


def test_a_late_event_recomputes_the_state_in_time_order_at_once(rec, store):
    live = LiveProfiles(rec, store)
    live.update([Event("ann", "i00001", T0 + 10), Event("ann", "i00002", T0 + 30)])
    result = live.update([Event("ann", "i00003", T0 + 20)])  # older than i00002
    assert (result.accepted, result.late, result.recomputed) == (1, 1, ["ann"])
    assert store.event_count("ann") == 3 and not store.get_state("ann").needs_rebuild
    assert store.stale_users(live.checkpoint) == []
    batch = rec.recommend_for_sequence(["i00001", "i00003", "i00002"], k=60,
                                       times=[T0 + 10, T0 + 20, T0 + 30])
    got = top_scores(live, "ann")
    assert "i00003" not in got  # seen
    np.testing.assert_allclose([got[i] for i in batch["item"]], batch["score"], atol=1e-5)
    # events of one batch out of order are taken in time order: nothing to recompute
    again = live.update([Event("bo", "i00002", T0 + 30), Event("bo", "i00001", T0 + 10)])
    assert again.late == 1 and again.recomputed == [] and again.folded == 2
    want = rec.recommend_for_sequence(["i00001", "i00002"], k=60, times=[T0 + 10, T0 + 30])
    got = top_scores(live, "bo")
    np.testing.assert_allclose([got[i] for i in want["item"]], want["score"], atol=1e-5)


def test_a_state_from_another_checkpoint_is_rebuilt_from_the_log(rec, store):
    live = LiveProfiles(rec, store)
    live.update([Event("bob", "i00004", T0), Event("bob", "i00005", T0 + 1)])
    expected = top_scores(live, "bob")
    store.put_state("bob", StoredState(checkpoint="old-model", blob=b"from another model",
                                       last_timestamp=T0, n_events=2))
    assert store.stale_users(live.checkpoint) == ["bob"]
    assert top_scores(live, "bob") == pytest.approx(expected, abs=1e-6)  # rebuilt in memory
    assert store.get_state("bob").checkpoint == "old-model"  # a read writes nothing
    assert live.rebuild_stale() == ["bob"]  # the writer stores it
    assert store.get_state("bob").checkpoint == live.checkpoint
    assert top_scores(live, "bob") == pytest.approx(expected, abs=1e-6)


def test_a_state_from_an_older_checkpoint_is_answered_while_the_sqlite_lock_is_held(
        rec, tmp_path):
    import sqlite3

    path = tmp_path / "busy.db"
    with open_store(f"sqlite:///{path}?timeout=30") as store:
        live = LiveProfiles(rec, store)
        live.update([Event("eve", "i00004", T0), Event("eve", "i00005", T0 + 1)])
        expected = top_scores(live, "eve")
        store.put_state("eve", StoredState(checkpoint="older-model", blob=b"old",
                                           last_timestamp=T0, n_events=2))
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # held until the answer has arrived
        try:
            replies = []
            reader = threading.Thread(target=lambda: replies.append(top_scores(live, "eve")))
            reader.start()
            reader.join(timeout=10)
            assert not reader.is_alive(), "the read waited for the write lock"
            assert replies and replies[0] == pytest.approx(expected, abs=1e-6)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert store.get_state("eve").checkpoint == "older-model"


def test_a_state_behind_the_log_is_caught_up_for_reads_and_stored_by_rebuild_stale(rec, store):
    live = LiveProfiles(rec, store)
    live.update([Event("cy", "i00006", T0)])
    store.append_events([Event("cy", "i00007", T0 + 1)])  # ingested, but the update "crashed"
    caught_up = top_scores(live, "cy")
    assert "i00007" not in caught_up  # the logged event is in the reply (seen, filtered)
    assert store.get_state("cy").n_events == 1  # a read writes nothing
    assert live.rebuild_stale() == ["cy"]
    assert store.get_state("cy").n_events == 2
    assert top_scores(live, "cy") == pytest.approx(caught_up, abs=1e-6)


def test_a_read_never_waits_for_a_writer_holding_the_sqlite_lock(rec, tmp_path):
    import sqlite3

    path = tmp_path / "busy.db"
    with open_store(f"sqlite:///{path}?timeout=30") as store:
        live = LiveProfiles(rec, store)
        live.update([Event("cy", "i00006", T0)])
        store.append_events([Event("cy", "i00007", T0 + 1)])  # its update still to come
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process's ingest, mid-transaction
        try:
            replies = []
            reader = threading.Thread(target=lambda: replies.append(top_scores(live, "cy")))
            reader.start()
            reader.join(timeout=10)
            assert replies and "i00007" not in replies[0]
        finally:
            writer.execute("ROLLBACK")
            writer.close()


def test_two_writers_on_one_store_lose_no_event(rec, url):
    """Two LiveProfiles (as two workers would) post events for one user at the same time."""
    n_threads, per_thread = 4, 15
    stores = [open_store(url) for _ in range(2)]
    lives = [LiveProfiles(rec, s) for s in stores]
    errors = []

    def post(t: int) -> None:
        try:
            for j in range(per_thread):
                lives[t % 2].update([Event("dan", f"i{(t * 7 + j) % 60:05d}",
                                           T0 + t * 1000 + j, event_id=f"{t}-{j}")])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert not errors
        n = n_threads * per_thread
        assert stores[0].event_count("dan") == n
        assert stores[0].get_state("dan").n_events == n  # every logged event folded in
        lives[0].rebuild("dan")
        assert stores[0].get_state("dan").n_events == n
    finally:
        for s in stores:
            s.close()
