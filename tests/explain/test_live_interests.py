"""A user's interests over the training history plus the events logged in a store equal what
``Recommender.profile`` / ``recommend_composed`` give once the same events are streamed in."""

from __future__ import annotations

import pandas as pd
import pytest

from prismrec.data.synthetic import generate
from prismrec.errors import UnknownIdError
from prismrec.explain.live_interests import live_composed, live_profile, user_history
from prismrec.profile import open_store
from prismrec.profile.live import LiveProfiles
from prismrec.profile.store import Event
from prismrec.recommender import Recommender

T0 = 1_800_000_000.0  # after every training event


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = generate(n_users=60, n_items=40, seed=3).to_dataset()
    rec = Recommender("gru", model_config={"dim": 16, "interests": 3},
                      train_config={"epochs": 1, "progress": False, "threads": 1, "seed": 0})
    return rec.fit(data).save(tmp_path_factory.mktemp("li") / "gru")


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'li.db'}") as s:
        yield s


def logged(user: str, items: list[str]) -> list[Event]:
    return [Event(user, it, T0 + j, "view", None, f"{user}-{j}") for j, it in enumerate(items)]


def test_without_a_store_it_is_the_offline_profile_and_list(checkpoint):
    rec = Recommender.load(checkpoint)
    user = rec.users_.to_list()[5]
    assert live_profile(rec, user).to_dict() == rec.profile(user).to_dict()
    pd.testing.assert_frame_equal(live_composed(rec, user, k=8, diversity=0.5),
                                  rec.recommend_composed(user, 8, diversity=0.5))


def test_logged_events_count_as_if_streamed_into_the_recommender(checkpoint, store):
    served, streamed = Recommender.load(checkpoint), Recommender.load(checkpoint)
    user = served.users_.to_list()[7]
    events = logged(user, ["i00003", "not-in-the-model", "i00011", "i00012"])
    LiveProfiles(served, store).update(events)
    streamed.update(pd.DataFrame({"user": [e.user for e in events],
                                  "item": [e.item for e in events],
                                  "timestamp": [e.timestamp for e in events]}))
    items, _ = user_history(served, user, store)
    assert len(items) == len(served.histories_.row(served.users_.index_of(user))) + 3
    mine = live_profile(served, user, store)
    assert mine.to_dict() == streamed.profile(user).to_dict()
    assert mine.event_items[-3:] == ["i00003", "i00011", "i00012"]
    assert served.profile(user).to_dict() != mine.to_dict()  # the store changed it
    composed = live_composed(served, user, store, k=6)
    pd.testing.assert_frame_equal(composed, streamed.recommend_composed(user, 6, diversity=0.0))
    pd.testing.assert_frame_equal(live_composed(served, user, store, k=6, profile=mine),
                                  composed)  # a profile already read is reused as is


def test_a_user_known_only_from_the_log_has_interests(checkpoint, store):
    rec = Recommender.load(checkpoint)
    LiveProfiles(rec, store).update(logged("brand-new", ["i00001", "i00002", "i00030"]))
    prof = live_profile(rec, "brand-new", store)
    assert prof.event_items == ["i00001", "i00002", "i00030"]
    assert abs(sum(i.weight for i in prof.interests) - 1) < 1e-9
    assert len(live_composed(rec, "brand-new", store, k=5)) == 5


def test_unknown_users_and_unusable_histories_are_named(checkpoint, store):
    rec = Recommender.load(checkpoint)
    with pytest.raises(UnknownIdError, match="ghost"):
        live_profile(rec, "ghost", store)
    LiveProfiles(rec, store).update(logged("odd", ["nothing-known"]))
    with pytest.raises(ValueError, match="no events to read a profile from"):
        live_profile(rec, "odd", store)
