"""Redis-specific erasure and upgrade: a big user is deleted in bounded commands, and a store
written when event ids were global is migrated to per-user event ids when opened."""

from __future__ import annotations

import pytest

from prismrec.profile import Event, open_store
from prismrec.profile.redis_store import CHUNK


@pytest.fixture
def redis_store_url(redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url


@pytest.mark.slow
def test_a_100k_event_user_is_erased_in_bounded_commands(redis_store_url):
    import redis

    n = 100_000
    with open_store(redis_store_url) as store:
        for start in range(0, n, 10_000):
            store.append_events([Event("big", f"i{k % 97}", float(k), event_id=f"e{k}")
                                 for k in range(start, start + 10_000)])
        store.append_events([Event("small", "i1", 1.0, event_id="e1")])
        assert store.event_count("big") == n
        assert store.forget("big") is True
        scrub = store.last_scrub
        # the log and the event-id hash each went in pieces of at most CHUNK elements
        assert scrub.done and scrub.attempts >= 2 * n // CHUNK, scrub
        assert store.event_count("big") == 0 and list(store.users()) == ["small"]
        assert store.stats()["events"] == 1
        assert store.append_events([Event("big", "i1", 1.0, event_id="e5")]).accepted == 1
    with redis.Redis.from_url(redis_store_url) as r:
        assert not [k for k in r.scan_iter(match=b"prismrec:trash*")]
        assert not [k for k in r.scan_iter() if b"e99999" in k]
        assert r.hlen(b"prismrec:eids:big") == 1


def test_leftovers_of_an_interrupted_erase_go_with_the_next_forget(redis_store_url):
    import redis

    with open_store(redis_store_url) as store, redis.Redis.from_url(redis_store_url) as r:
        r.rpush(b"prismrec:trash:ev:dead", b"old-event-of-someone")  # a process died here
        r.sadd(b"prismrec:trash", b"prismrec:trash:ev:dead")
        store.append_events([Event("ann", "i1", 1.0)])
        store.forget("ann")
        assert not r.exists(b"prismrec:trash:ev:dead") and not r.exists(b"prismrec:trash")


def test_a_store_with_global_event_ids_is_migrated_on_open(redis_store_url):
    import redis

    with open_store(redis_store_url) as store:
        store.append_events([Event("ann", "i1", 1.0, event_id="shared"),
                             Event("bob", "i2", 2.0, event_id="b1")])
    with redis.Redis.from_url(redis_store_url) as r:  # rewrite it the schema-1 way
        r.delete(b"prismrec:eids:ann", b"prismrec:eids:bob", b"prismrec:schema")
        r.hset(b"prismrec:eids", mapping={b"shared": b"ann", b"b1": b"bob"})
    with open_store(redis_store_url) as store:
        assert store.append_events([Event("ann", "i3", 3.0, event_id="shared")]).duplicates == 1
        assert store.append_events([Event("bob", "i4", 4.0, event_id="shared")]).accepted == 1
        assert store.append_events([Event("bob", "i4", 4.0, event_id="b1")]).duplicates == 1
    with redis.Redis.from_url(redis_store_url) as r:
        assert not r.exists(b"prismrec:eids") and r.get(b"prismrec:schema") == b"3"


def test_a_schema_2_store_opens_as_schema_3_and_a_newer_one_is_refused(redis_store_url):
    import redis

    from prismrec.profile import StoreError

    with open_store(redis_store_url) as store:
        store.append_events([Event("ann", "i1", 1.0, event_id="e1")])
    with redis.Redis.from_url(redis_store_url) as r:
        r.set(b"prismrec:schema", b"2")  # before preferences: nothing else to move
    with open_store(redis_store_url) as store:
        store.set_preference("ann", 1, "boost")
        assert [(p.interest, p.steer) for p in store.preferences("ann")] == [(1, "boost")]
        assert len(store.events("ann")) == 1
    with redis.Redis.from_url(redis_store_url) as r:
        assert r.get(b"prismrec:schema") == b"3"
        r.set(b"prismrec:schema", b"9")
    with pytest.raises(StoreError, match="schema '9'"):
        open_store(redis_store_url)
