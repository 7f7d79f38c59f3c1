"""LiveProfiles, the streaming path: one model step per new event, same answer as a batch."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load as load_tensors

from prismrec.data.synthetic import generate
from prismrec.profile import Event, open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def rec(tiny_checkpoint) -> Recommender:
    return Recommender.load(tiny_checkpoint)


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'live.db'}") as s:
        yield s


@pytest.fixture
def live(rec, store) -> LiveProfiles:
    return LiveProfiles(rec, store)


def stream(n: int, seed: int = 0, n_items: int = 60) -> tuple[list[str], list[float]]:
    rng = np.random.default_rng(seed)
    items = [f"i{i:05d}" for i in rng.integers(0, n_items, n)]
    times = (T0 + np.cumsum(rng.integers(1, 5000, n))).astype(float).tolist()
    return items, times


def scores(frame: pd.DataFrame) -> dict[str, float]:
    return dict(zip(frame["item"], frame["score"], strict=True))


def assert_same_scores(streamed: pd.DataFrame, batch: pd.DataFrame) -> None:
    a, b = scores(streamed), scores(batch)
    assert set(a) == set(b)
    np.testing.assert_allclose([a[i] for i in b], list(b.values()), atol=1e-5)


@pytest.mark.parametrize("model", ["lstm", "gru", "sasrec"])
def test_streaming_one_event_at_a_time_equals_the_whole_history_in_one_batch(tmp_path, model):
    data = generate(n_users=60, n_items=40, seed=2).to_dataset()
    config = {"dim": 16, "time_gaps": True, **({"max_len": 6} if model == "sasrec" else {})}
    fitted = Recommender(model, model_config=config,
                         train_config={"epochs": 1, "progress": False, "threads": 1}).fit(data)
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        live = LiveProfiles(fitted, store)
        items, times = stream(25, n_items=40)
        for j, (item, t) in enumerate(zip(items, times, strict=True)):
            live.update([Event("newcomer", item, t, event_id=f"e{j}")])
        streamed = live.recommend("newcomer", k=40)
    batch = fitted.recommend_for_sequence(items, k=40, times=times)
    assert_same_scores(streamed, batch)


def test_a_user_known_from_training_continues_from_their_training_history(rec, live):
    user = rec.users_.ids([7])[0]
    history = rec.items_.ids(rec.histories_.row(7))
    history_times = rec.histories_.row_times(7).tolist()
    before = live.recommend(user, k=60)
    pd.testing.assert_frame_equal(before[["rank", "item", "score"]], rec.recommend(user, k=60)
                                  .drop(columns="user"))
    items, _ = stream(5, seed=3)
    times = [history_times[-1] + 60.0 * (j + 1) for j in range(5)]
    live.update([Event(user, i, t) for i, t in zip(items, times, strict=True)])
    after = live.recommend(user, k=60)
    batch = rec.recommend_for_sequence(history + items, k=60, times=history_times + times)
    assert_same_scores(after, batch)
    assert scores(after) != scores(before)


def test_an_update_reads_from_the_log_only_what_the_state_lacks(rec, store):
    class CountingStore:  # the real store, counting what is read from the logs
        def __init__(self, inner):
            self.inner, self.read = inner, 0

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def events(self, user, *, since_seq=None):
            out = self.inner.events(user, since_seq=since_seq)
            self.read += len(out)
            return out

        def events_since(self, since):
            out = self.inner.events_since(since)
            self.read += sum(len(tail) for tail in out.values())
            return out

    counting = CountingStore(store)
    live = LiveProfiles(rec, counting)
    items, times = stream(300)
    live.update([Event("long", i, t) for i, t in zip(items, times, strict=True)])
    counting.read = 0
    result = live.update([Event("long", "i00001", times[-1] + 1)])
    assert counting.read == 0 and result.folded == 1  # the ingest hands its events over
    assert "O(1) per event" in result.step_cost
    store.append_events([Event("long", "i00002", times[-1] + 2)])  # logged, not folded
    result = live.update([Event("long", "i00003", times[-1] + 3)])
    assert counting.read == 2 and result.folded == 2  # the state's gap is read: both


def test_a_recommendation_from_a_current_profile_is_one_store_read(rec, store):
    class CallLog:  # the real store, noting each call
        def __init__(self, inner):
            self.inner, self.calls = inner, []

        def __getattr__(self, name):
            attr = getattr(self.inner, name)
            if not callable(attr):
                return attr

            def noted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)

            return noted

    log = CallLog(store)
    live = LiveProfiles(rec, log)
    live.update([Event("cur", "i00001", T0), Event("cur", "i00002", T0 + 1)])
    log.calls.clear()
    live.recommendations("cur", 5)
    assert log.calls == ["get_state"]  # the state and the log length, one snapshot
    store.append_events([Event("cur", "i00003", T0 + 2)])  # logged, not folded
    log.calls.clear()
    live.recommendations("cur", 5)
    assert log.calls[0] == "get_state" and "events_since" in log.calls  # the gap is read
    users = ["two", "three", "four"]
    live.update([Event(u, f"i0000{j}", T0 + j) for j, u in enumerate(users)])
    log.calls.clear()
    batch = live.recommendations_many([dict(user=u, k=5) for u in users])
    assert log.calls == ["get_states"]  # a batch: one read of every user's state
    for got, one in zip(batch, [live.recommendations(u, 5) for u in users], strict=True):
        assert got.items == one.items  # scores: equal up to the batched product's rounding
        assert got.scores == pytest.approx(one.scores, rel=1e-5)


def test_unknown_items_are_logged_and_reported_but_not_fed_to_the_model(rec, live, store):
    items, times = stream(6)
    live.update([Event("ann", i, t) for i, t in zip(items, times, strict=True)])
    before = scores(live.recommend("ann", k=60))
    result = live.update([Event("ann", "brand-new-item", times[-1] + 1),
                          Event("ann", "another-new", times[-1] + 2)])
    assert result.unknown_items == ["brand-new-item", "another-new"]
    assert result.accepted == 2 and result.folded == 0
    assert [e.item for e in store.events("ann")][-2:] == ["brand-new-item", "another-new"]
    assert scores(live.recommend("ann", k=60)) == before


def test_resending_the_same_event_ids_changes_nothing(live, store):
    items, times = stream(5)
    batch = [Event("bob", i, t, event_id=f"b{j}")
             for j, (i, t) in enumerate(zip(items, times, strict=True))]
    live.update(batch)
    first, version = live.recommend("bob", k=10), store.get_state("bob").version
    again = live.update(batch)
    assert (again.accepted, again.duplicates, again.folded) == (0, 5, 0)
    assert store.get_state("bob").version == version
    pd.testing.assert_frame_equal(live.recommend("bob", k=10), first)


def test_a_user_nobody_knows_gets_popular_items_and_says_so(rec, live):
    frame = live.recommend("stranger", k=5)
    assert frame.attrs["fallback"] == "popular"
    counts = np.bincount(rec.histories_.items, minlength=len(rec.items_))
    assert frame["item"].tolist() == rec.items_.ids(np.argsort(-counts, kind="stable")[:5])
    live.update([Event("stranger", "i00003", T0)])
    assert live.recommend("stranger", k=5).attrs["fallback"] is None


def test_seen_and_excluded_items_are_left_out(live):
    live.update([Event("cat", "i00001", T0), Event("cat", "i00002", T0 + 1)])
    frame = live.recommend("cat", k=60, exclude=["i00005", "not-an-item"])
    assert not {"i00001", "i00002", "i00005"} & set(frame["item"])
    assert len(frame) == 57
    assert {"i00001", "i00002"} <= set(live.recommend("cat", k=60, filter_seen=False)["item"])


def test_many_requests_scored_together_equal_one_call_each(live):
    for j, user in enumerate(("ann", "bob", "cy")):
        live.update([Event(user, f"i{j + 1:05d}", T0), Event(user, f"i{j + 7:05d}", T0 + 1)])
    asks = [dict(user="ann", k=5), dict(user="bob", k=8, diversity=0.5),
            dict(user="stranger", k=3), dict(user="cy", k=4, exclude=["i00002"]),
            dict(user="ann", k=5, filter_seen=False)]
    got = live.recommendations_many(asks)
    for ask, one in zip(asks, got, strict=True):
        want = live.recommendations(**ask)
        assert one.items == want.items and one.fallback == want.fallback
        np.testing.assert_allclose(one.scores, want.scores, atol=1e-5)


def test_a_batch_scored_on_another_thread_gives_the_same_lists(live):
    for j, user in enumerate(("ann", "bob")):
        live.update([Event(user, f"i{j + 1:05d}", T0), Event(user, f"i{j + 7:05d}", T0 + 1)])
    asks = [dict(user="ann", k=5), dict(user="stranger", k=3), dict(user="bob", k=0)]
    batch = live.start_recommendations(asks)
    with pytest.raises(RuntimeError, match="before score"):
        batch.results()
    scorer = threading.Thread(target=batch.score)
    scorer.start()
    scorer.join()
    ann, stranger, bad = batch.results()
    want = live.recommendations_many(asks)
    assert ann.items == want[0].items and stranger.items == want[1].items
    np.testing.assert_allclose(ann.scores, want[0].scores, atol=1e-6)
    assert isinstance(bad, ValueError) and isinstance(want[2], ValueError)


def test_a_bad_request_in_a_batch_fails_alone(live):
    live.update([Event("ok", "i00001", T0)])
    good, bad_k, bad_div = live.recommendations_many(
        [dict(user="ok", k=3), dict(user="ok", k=0), dict(user="ok", k=3, diversity=2)])
    assert len(good.items) == 3
    assert isinstance(bad_k, ValueError) and "k" in str(bad_k)
    assert isinstance(bad_div, ValueError) and "diversity" in str(bad_div)


def test_diversity_zero_keeps_the_model_order_and_is_validated(live):
    live.update([Event("dee", "i00001", T0)])
    plain = live.recommend("dee", k=10)
    pd.testing.assert_frame_equal(live.recommend("dee", k=10, diversity=0.0), plain)
    mixed = live.recommend("dee", k=10, diversity=0.9)
    assert mixed["item"].iloc[0] == plain["item"].iloc[0] and len(mixed) == 10
    with pytest.raises(ValueError, match="diversity"):
        live.recommend("dee", k=10, diversity=1.5)


def test_the_state_is_a_safetensors_blob_tagged_with_the_checkpoint(live, store):
    live.update([Event("eve", "i00004", T0), Event("eve", "i00009", T0 + 5)])
    stored = store.get_state("eve")
    assert stored.checkpoint == live.checkpoint and stored.n_events == 2
    tensors = load_tensors(stored.blob)
    assert tensors["rnn"].shape == (2, 1, 16)  # LSTM (h, c), 1 layer, dim 16
    assert tensors["hidden"].shape == (16,)
    assert tensors["recent_items"].tolist() == [4, 9]


def test_a_data_frame_of_events_is_accepted(live, store):
    frame = pd.DataFrame({"user": ["fay", "fay"], "item": ["i00001", "i00002"],
                          "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "event_id": ["f1", "f2"]})
    result = live.update(frame)
    assert result.accepted == 2
    assert store.events("fay")[1].timestamp - store.events("fay")[0].timestamp == 86400.0


def test_an_invalid_batch_is_refused_whole(live, store):
    from prismrec.errors import DataError

    with pytest.raises(DataError, match="timestamp"):
        live.update([Event("gus", "i00001", T0), Event("gus", "i00002", float("nan"))])
    assert store.event_count("gus") == 0 and store.get_state("gus") is None


def test_forget_erases_the_log_and_the_state(live, store):
    live.update([Event("hal", "i00001", T0)])
    assert live.forget("hal") is True
    assert store.event_count("hal") == 0 and store.get_state("hal") is None
    assert live.recommend("hal", k=3).attrs["fallback"] == "popular"


def test_one_batch_for_many_users_equals_each_user_streamed_alone(rec, tmp_path):
    rng = np.random.default_rng(5)
    users = ["u0002", "new-a", "new-b", "u0009", "new-c"]  # trained and new users mixed
    events = []
    for j in range(40):  # users get different numbers of events, interleaved
        user = users[min(int(rng.integers(0, 7)), 4)]
        events.append(Event(user, f"i{rng.integers(0, 60):05d}", T0 + j))
    with open_store(f"sqlite:///{tmp_path / 'one.db'}") as a, \
            open_store(f"sqlite:///{tmp_path / 'many.db'}") as b:
        together, alone = LiveProfiles(rec, a), LiveProfiles(rec, b)
        result = together.update(events)
        assert result.folded == 40 and sorted(result.users_updated) == sorted(set(users))
        for ev in events:
            alone.update([ev])
        for user in users:
            np.testing.assert_allclose(together.recommend(user, k=60)["score"],
                                       alone.recommend(user, k=60)["score"], atol=1e-6)
