"""Recommender.update / forget: the in-memory streaming path, checked against whole histories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec.data import Interactions
from prismrec.errors import DataError, UnknownIdError
from prismrec.recommender import Recommender
from prismrec.testing import CYCLES, cycle_frame

torch.set_num_threads(1)

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "progress": False, "threads": 1,
         "valid_filter_seen": False, "batch_size": 64}
T0 = 1.7e9



def fitted(model: str, **config) -> Recommender:
    cfg = {"dim": 32, "dropout": 0.1, **config}
    return Recommender(model, model_config=cfg, train_config=TRAIN).fit(
        Interactions.from_frame(cycle_frame()))


@pytest.fixture(scope="module")
def gru() -> Recommender:
    return fitted("gru")


def frame(user: str, items: list[str], times: list[float], ids: list[str] | None = None):
    out = pd.DataFrame({"user": user, "item": items, "timestamp": times})
    if ids is not None:
        out["event_id"] = ids
    return out


def scores(rec: Recommender, user: str) -> pd.Series:
    r = rec.recommend(user, k=len(rec.items_), filter_seen=False)
    return r.set_index("item")["score"].sort_index()


def batch_scores(rec: Recommender, items: list[str], times: list[float]) -> pd.Series:
    r = rec.recommend_for_sequence(items, k=len(rec.items_), filter_seen=False, times=times)
    return r.set_index("item")["score"].sort_index()


def history(rec: Recommender, user: str) -> tuple[list[str], list[float]]:
    r = rec.users_.index_of(user)
    h = rec.histories_
    return rec.items_.ids(h.row(r)), h.row_times(r).tolist()


@pytest.mark.parametrize("model,config", [("gru", {}), ("lstm", {"time_gaps": True}),
                                          ("lstm", {"layers": 2}), ("sasrec", {"max_len": 6})])
def test_streaming_event_by_event_scores_like_the_whole_history_in_one_batch(model, config):
    rec = Recommender(model, model_config={"dim": 16, **config},
                      train_config={**TRAIN, "epochs": 2}).fit(
        Interactions.from_frame(cycle_frame(40)))
    walk = ["i4", "i1", "i5", "i6", "i4", "i1", "i5", "i6", "i4"]
    times = [T0 + 37.0 * j * j for j in range(len(walk))]  # uneven gaps
    for j, (item, t) in enumerate(zip(walk, times, strict=True)):
        rec.update(frame("new-user", [item], [t]))
        got = scores(rec, "new-user")
        want = batch_scores(rec, walk[: j + 1], times[: j + 1])
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-5)
    # a user from training continues from their training history
    old_items, old_times = history(rec, "u3")
    rec.update(frame("u3", ["i7", "i8"], [old_times[-1] + 5, old_times[-1] + 9]))
    rec.update(frame("u3", ["i9"], [old_times[-1] + 20]))
    want = batch_scores(rec, old_items + ["i7", "i8", "i9"],
                        old_times + [old_times[-1] + 5, old_times[-1] + 9, old_times[-1] + 20])
    np.testing.assert_allclose(scores(rec, "u3").to_numpy(), want.to_numpy(), atol=1e-5)


def test_each_new_event_is_one_step_from_the_carried_state(gru):
    gru.update(frame("carry", ["i0", "i1"], [T0, T0 + 1]))
    (carried,) = gru._states["carry"].rnn  # the GRU's h, (L, D), numpy
    carried = torch.from_numpy(carried.copy())
    rows_before = gru.histories_.n_events
    gru.update(frame("carry", ["i2"], [T0 + 2]))
    item = torch.tensor([gru.items_.index_of("i2")])
    with torch.no_grad():
        h, _ = gru.model_.eval().step(carried[:, None], item)  # state (L, 1, D)
    torch.testing.assert_close(h[0], torch.from_numpy(gru._states["carry"].hidden), atol=1e-5,
                               rtol=0)
    assert gru.histories_.n_events == rows_before + 1


def test_after_an_update_the_next_recommendation_follows_the_new_event(gru):
    gru.update(frame("walker", ["i7", "i8", "i9"], [T0, T0 + 10, T0 + 20]))
    assert gru.recommend("walker", k=1, filter_seen=False).loc[0, "item"] == "i7"
    gru.update(frame("walker", ["i7"], [T0 + 30]))
    assert gru.recommend("walker", k=1, filter_seen=False).loc[0, "item"] == "i8"
    # a cycle that shares item 8: after i10, i8 is followed by i11
    gru.update(frame("other", ["i10", "i8"], [T0, T0 + 1]))
    assert gru.recommend("other", k=1, filter_seen=False).loc[0, "item"] == "i11"
    assert (10, 8, 11, 12, 13) in CYCLES


def test_new_users_are_added_and_recommended_with_seen_items_left_out(gru):
    result = gru.update(frame("fresh", ["i0", "i1", "i2"], [T0, T0 + 1, T0 + 2]))
    assert result.new_users == ["fresh"] and result.accepted == 3
    assert "fresh" in gru.users_
    recs = gru.recommend("fresh", k=5)
    assert not set(recs["item"]) & {"i0", "i1", "i2"}
    assert history(gru, "fresh")[0] == ["i0", "i1", "i2"]


def test_duplicate_event_ids_are_ignored_within_and_across_batches(gru):
    ev = frame("dup", ["i4", "i1", "i1"], [T0, T0 + 1, T0 + 1], ids=["a", "b", "b"])
    first = gru.update(ev)
    assert (first.accepted, first.duplicates) == (2, 1)
    state = gru._states["dup"].hidden.copy()
    again = gru.update(ev)
    assert (again.accepted, again.duplicates) == (0, 3)
    assert history(gru, "dup")[0] == ["i4", "i1"]
    np.testing.assert_array_equal(gru._states["dup"].hidden, state)


def test_event_ids_are_per_user_so_the_same_id_from_two_users_is_applied_for_both(gru):
    both = pd.concat([frame("idA", ["i3", "i4"], [T0, T0 + 1], ids=["e1", "e2"]),
                      frame("idB", ["i5", "i6"], [T0, T0 + 1], ids=["e1", "e2"])])
    result = gru.update(both)  # one batch: the same ids for two users
    assert (result.accepted, result.duplicates) == (4, 0)
    later = gru.update(frame("idC", ["i7"], [T0], ids=["e1"]))  # a later batch, a third user
    assert (later.accepted, later.duplicates) == (1, 0)
    assert history(gru, "idA")[0] == ["i3", "i4"] and history(gru, "idB")[0] == ["i5", "i6"]
    assert history(gru, "idC")[0] == ["i7"]
    again = gru.update(frame("idB", ["i5"], [T0 + 2], ids=["e1"]))  # the same user again
    assert (again.accepted, again.duplicates) == (0, 1)
    assert gru.forget("idA") is True  # forgetting one user keeps the other's ids
    assert gru.update(frame("idB", ["i5"], [T0 + 2], ids=["e2"])).duplicates == 1


def test_late_events_are_stored_in_time_order_and_the_state_is_recomputed(gru):
    gru.update(frame("late", ["i0", "i1", "i2"], [T0 + 10, T0 + 20, T0 + 30]))
    result = gru.update(frame("late", ["i3", "i7"], [T0 + 15, T0 + 40]))
    assert result.late == 1 and result.recomputed == ["late"]
    items, times = history(gru, "late")
    assert items == ["i0", "i3", "i1", "i2", "i7"] and times == sorted(times)
    np.testing.assert_allclose(scores(gru, "late").to_numpy(),
                               batch_scores(gru, items, times).to_numpy(), atol=1e-5)


def test_unknown_items_are_reported_not_stored(gru):
    result = gru.update(pd.DataFrame({"user": ["unk", "unk", "ghost"],
                                      "item": ["i0", "no-such", "no-such"],
                                      "timestamp": [T0, T0 + 1, T0 + 2]}))
    assert result.unknown_items == ["no-such"] and result.unknown_events == 2
    assert result.accepted == 1 and result.new_users == ["unk"]
    assert "ghost" not in gru.users_  # nothing of theirs could be stored
    assert history(gru, "unk")[0] == ["i0"]


def test_an_invalid_batch_changes_nothing(gru):
    n_users, n_events = len(gru.users_), gru.histories_.n_events
    bad = pd.DataFrame({"user": ["x", "y"], "item": ["i0", "i1"], "timestamp": [T0, "soon"]})
    with pytest.raises(DataError, match="timestamp"):
        gru.update(bad)
    with pytest.raises(DataError, match="timestamp"):
        gru.update(pd.DataFrame({"user": ["x"], "item": ["i0"]}))
    assert (len(gru.users_), gru.histories_.n_events) == (n_users, n_events)


def test_a_list_of_records_updates_like_a_frame(gru):
    events = [{"user": "rec-a", "item": "i3", "timestamp": T0, "event_id": "ra1"},
              {"user": "rec-a", "item": "i4", "timestamp": T0 + 5}]
    got = gru.update(events)
    gru.update(frame("frm-a", ["i3", "i4"], [T0, T0 + 5]))
    assert got.accepted == 2 and gru.update(events[:1]).duplicates == 1
    np.testing.assert_allclose(scores(gru, "rec-a").to_numpy(),
                               scores(gru, "frm-a").to_numpy(), atol=1e-6)


@pytest.mark.parametrize("events,error,match", [
    ({"user": "x", "item": "i0", "timestamp": T0}, TypeError, "list"),
    (["x", "i0"], TypeError, r"events\[0\]"),
    ([{"user": "x", "item": "i0"}], DataError, "timestamp is missing"),
    ([{"user": None, "item": "i0", "timestamp": T0}], DataError, "user is missing"),
    ([{"user": "x", "item": "i0", "timestamp": "soon"}], DataError, "soon"),
    ([{"user": "x", "item": "i0", "timestamp": float("inf")}], DataError,
     "must be a finite number"),
])
def test_malformed_records_are_refused_and_change_nothing(gru, events, error, match):
    n_users, n_events = len(gru.users_), gru.histories_.n_events
    with pytest.raises(error, match=match):
        gru.update(events)
    assert (len(gru.users_), gru.histories_.n_events) == (n_users, n_events)


def test_batch_and_single_recommendations_agree_for_streamed_and_untouched_users(gru):
    gru.update(frame("mix", ["i5", "i6"], [T0, T0 + 1]))
    both = gru.recommend(["mix", "u2"], k=4)
    for user in ("mix", "u2"):
        one = gru.recommend(user, k=4)
        part = both[both["user"] == user].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, one, atol=1e-6)


def test_forget_removes_the_users_history_state_and_event_ids():
    rec = fitted("gru")
    rec.update(frame("gone", ["i0", "i1"], [T0, T0 + 1], ids=["g1", "g2"]))
    keep = rec.recommend("u5", k=5)
    n_users = len(rec.users_)
    assert rec.forget("gone") is True
    assert "gone" not in rec.users_ and "gone" not in rec._states
    assert len(rec.users_) == len(rec.histories_) == n_users - 1
    with pytest.raises(UnknownIdError, match="unknown user 'gone'"):
        rec.recommend("gone")
    pd.testing.assert_frame_equal(rec.recommend("u5", k=5), keep)
    assert rec.forget("gone") is False
    again = rec.update(frame("gone", ["i0"], [T0], ids=["g1"]))  # its ids went with it
    assert again.accepted == 1 and again.new_users == ["gone"]
    assert rec.forget("u5") is True and "u5" not in rec.users_


def test_streamed_history_is_saved_and_loaded(gru, tmp_path):
    gru.update(frame("saved", ["i10", "i8", "i11"], [T0, T0 + 1, T0 + 2]))
    back = Recommender.load(gru.save(tmp_path / "ck"))
    assert history(back, "saved") == history(gru, "saved")
    pd.testing.assert_frame_equal(back.recommend("saved", k=5), gru.recommend("saved", k=5),
                                  atol=1e-5)


def test_a_live_profiles_sharing_the_vocabulary_is_not_disturbed(tmp_path):
    from prismrec.profile import open_store
    from prismrec.profile.live import LiveProfiles

    rec = fitted("gru")
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        live = LiveProfiles(rec, store)
        rec.update(frame("only-in-memory", ["i0"], [T0]))
        assert not live.known_user("only-in-memory")
        assert live.recommend("only-in-memory", k=3).attrs["fallback"] == "popular"
