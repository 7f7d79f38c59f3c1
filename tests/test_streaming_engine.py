"""One streaming engine: the same event stream through the library (``Recommender.update``)
and through the service (``LiveProfiles.update`` over a real SQLite file) gives the same
state and the same recommendations, batch after batch, for every rule of the engine:
known and new users, unknown items, duplicate event ids, events out of order within a batch,
late events, recurrent steps with an interest head, SASRec's window."""

from __future__ import annotations

import numpy as np
import pytest

from prismrec.data.synthetic import generate
from prismrec.profile import Event, open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def data():
    return generate(n_users=60, n_items=50, seed=11).to_dataset()


@pytest.fixture(scope="module", params=[("gru", {}), ("lstm", {"interests": 2}),
                                        ("sasrec", {"max_len": 4})],
                ids=["gru", "lstm-head", "sasrec"])
def checkpoint(request, data, tmp_path_factory):
    name, cfg = request.param
    rec = Recommender(name, model_config={"dim": 12, **cfg},
                      train_config={"epochs": 1, "progress": False, "threads": 1}).fit(data)
    return rec.save(tmp_path_factory.mktemp("ck") / name)


def batches(data) -> list[list[Event]]:
    known = data.users.to_list()[:3]
    item = data.items.to_list()
    u0, u1, u2 = known
    last = {u: float(data.sequences.row_times(data.users.index_of(u))[-1]) for u in known}
    t = max(last.values()) + 100
    return [
        [Event(u0, item[1], t + 1, event_id="a"), Event("newbie", item[2], t + 2),
         Event("newbie", "not-in-catalogue", t + 3), Event(u1, item[3], t + 4)],
        # a duplicate id, two events out of order in one batch, a new user's second event
        [Event(u0, item[1], t + 1, event_id="a"), Event(u2, item[5], t + 9),
         Event(u2, item[4], t + 8), Event("newbie", item[6], t + 10)],
        # late: older than what u0 and newbie already have
        [Event(u0, item[7], t + 0.5), Event("newbie", item[8], t + 2.5),
         Event(u1, item[9], t + 20)],
        # and on again, one step each
        [Event(u0, item[10], t + 30), Event("newbie", item[11], t + 31),
         Event(u2, item[12], t + 32), Event(u1, item[13], t + 33)],
    ]


def test_library_and_service_fold_a_stream_alike(checkpoint, data, tmp_path):
    library = Recommender.load(checkpoint)
    results = []
    with open_store(f"sqlite:///{tmp_path / 'live.db'}") as store:
        service = LiveProfiles(Recommender.load(checkpoint), store)
        for j, batch in enumerate(batches(data)):
            lib = library.update([{"user": e.user, "item": e.item, "timestamp": e.timestamp,
                                   "event_id": e.event_id} for e in batch])
            svc = service.update(batch)
            assert lib.unknown_items == svc.unknown_items
            assert lib.recomputed == svc.recomputed, f"batch {j}"
            results.append((lib, svc))
            for user in dict.fromkeys(e.user for e in batch):
                mine = library._states[user]
                theirs = service._current(service.served, user)
                np.testing.assert_allclose(mine.hidden, theirs.hidden, atol=1e-6, rtol=0)
                for a, b in ((mine.rnn, theirs.rnn), (mine.head, theirs.head)):
                    assert (a is None) == (b is None)
                    if a is not None:
                        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
                np.testing.assert_array_equal(mine.recent_items, theirs.recent_items)
                want = library.recommend(user, k=8)
                got = service.recommend(user, k=8)
                assert got["item"].tolist() == want["item"].tolist(), (j, user)
                np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)
    # the batches did exercise each rule
    u0 = data.users.to_list()[0]
    assert results[0][0].unknown_items == ["not-in-catalogue"]
    assert results[1][0].duplicates == 1 and results[1][1].duplicates == 1
    assert results[1][0].recomputed == []  # out of order within a batch: time order, no late
    assert results[2][0].recomputed == [u0, "newbie"]  # late: recomputed from the history
    assert results[3][0].recomputed == [] and results[3][1].folded == 4  # one step each
