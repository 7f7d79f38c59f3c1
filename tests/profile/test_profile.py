"""The profile a person reads: named interests with weights, horizons and their history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec.data.catalog import Catalog
from prismrec.errors import UnknownIdError
from prismrec.explain.interests import compose_for, narrate_profile, profile_for, summary_of
from prismrec.models import build_model
from prismrec.profile.profile import build_profile, kmeans
from prismrec.recommender import Recommender

RUN = ["Stridex running shoes", "Pacefield trail shoes", "Kinetra running jacket",
       "Tempo running socks", "Roadrunner running tights", "Stridex racing flats",
       "Pacefield running shorts", "Kinetra GPS running watch"]
KITCHEN = ["Copperline frying pan", "Hearthstone stock pot", "Panmaster chef's knife",
           "Ladle dutch oven", "Copperline saucepan", "Hearthstone wok",
           "Panmaster roasting tin", "Ladle stand mixer"]


def _catalog() -> Catalog:
    """16 items the users shop, and 16 of two other categories nobody touches."""
    titles = RUN + KITCHEN + [f"Orbit novel {j}" for j in range(8)] + [
        f"Greenthumb spade {j}" for j in range(8)]
    cats = ["running gear"] * 8 + ["kitchenware"] * 8 + ["books"] * 8 + ["gardening"] * 8
    return Catalog.from_frame(pd.DataFrame({"item": [f"i{j:02d}" for j in range(32)],
                                            "title": titles, "categories": cats}),
                              categories="categories")


def _events(n_users: int = 200, seed: int = 0) -> pd.DataFrame:
    """Users who shop running gear (items 0-7) then switch to kitchenware (8-15), or back."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        first = rng.integers(2)
        n1, n2 = rng.integers(5, 15), rng.integers(4, 12)
        seq = np.concatenate([rng.integers(0, 8, n1) + 8 * first,
                              rng.integers(0, 8, n2) + 8 * (1 - first)])
        rows += [(f"u{u:03d}", f"i{j:02d}", 1000.0 * u + t) for t, j in enumerate(seq)]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


@pytest.fixture(scope="module")
def fitted() -> Recommender:
    torch.manual_seed(0)
    rec = Recommender("lstm", model_config={"dim": 16, "interests": 3, "dropout": 0.1,
                                            "hidden_dropout": 0.1},
                      train_config={"epochs": 8, "lr": 5e-3, "progress": False, "threads": 1,
                                    "batch_size": 32, "weight_decay": 0.0})
    return rec.fit(_events(), _catalog(), valid=False)


def _switcher(rec: Recommender) -> str:
    """A user whose history starts with running gear and ends with kitchenware."""
    for r in range(len(rec.users_)):
        row = rec.histories_.row(r)
        if row[0] < 8 and 8 <= row[-1] < 16 and len(row) >= 12:
            return rec.users_.ids(np.array([r]))[0]
    raise AssertionError("no switching user in the fixture")


def test_profile_names_both_interests_from_the_catalogue_and_ranks_the_recent_first(fitted):
    prof = profile_for(fitted, _switcher(fitted))
    labels = [i.label for i in prof.interests]
    assert len(prof) >= 2
    assert labels[0].startswith("kitchenware"), labels
    assert any(lab.startswith("running gear") for lab in labels[1:]), labels
    assert abs(prof.weights().sum() - 1) < 1e-9
    assert prof.interests[0].weight > prof.interests[1].weight


def test_profile_dates_horizons_and_history_match_the_events(fitted):
    user = _switcher(fitted)
    prof = profile_for(fitted, user)
    r = fitted.users_.index_of(user)
    times = fitted.histories_.row_times(r)
    kitchen = [i for i in prof.interests if i.label.startswith("kitchenware")]
    running = next(i for i in prof.interests if i.label.startswith("running gear"))
    assert running.first_seen in times[:2] and running.last_seen < times[-3]
    assert prof.interests[0].last_seen == times[-1]
    assert prof.interests[0].horizon == "short" and running.horizon == "long"
    kitchen = kitchen[0]
    assert kitchen.top_titles[0].split()[0] in {"Copperline", "Hearthstone", "Panmaster",
                                                "Ladle"}
    # weights over time: running mattered before the switch and has faded since
    n_run = int((fitted.histories_.row(r) < 8).sum())
    assert max(running.weight_history[:n_run]) > 10 * running.weight_history[-1]
    assert len(kitchen.weight_history) == len(times) == len(prof.event_items)


def test_profile_document_has_each_interest_with_id_label_weight_horizon_and_titled_items(
        fitted):
    prof = profile_for(fitted, _switcher(fitted))
    d = prof.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["user"] == prof.user and d["components"] == "decay" and d["fallback"] is None
    assert d["n_events"] == len(prof.event_items) and "events" not in d
    for doc, it in zip(d["interests"], prof.interests, strict=True):
        assert doc["id"] == it.component and doc["label"] == it.label
        assert doc["weight"] == pytest.approx(it.weight)
        assert doc["horizon"] in {"short", "long"}
        assert doc["first_seen"] <= doc["last_seen"]
        assert doc["top_items"] == [{"id": i, "title": t}
                                    for i, t in zip(it.top_items, it.top_titles, strict=True)]
        assert "timeline" not in doc
    timed = prof.to_dict(timeline=True)
    assert [e["item"] for e in timed["events"]] == prof.event_items
    for doc, it in zip(timed["interests"], prof.interests, strict=True):
        assert doc["timeline"] == pytest.approx(it.weight_history)
        assert len(doc["timeline"]) == len(prof.event_items)


def test_printing_a_profile_gives_a_short_summary_without_arrays(fitted):
    prof = profile_for(fitted, _switcher(fitted))
    text = str(prof)
    assert text.splitlines()[0].startswith(f"user {prof.user}: {len(prof)} interest(s)")
    assert len(text.splitlines()) == len(prof) + 1
    for it in prof.interests:
        assert it.label in text and it.top_titles[0] in text
    assert "[" + "0." not in text and "array" not in text


def test_narrative_names_the_labels_of_the_profile(fitted):
    prof = profile_for(fitted, _switcher(fitted))
    text = narrate_profile(prof).text
    assert "kitchenware" in text
    summary = summary_of(prof)
    assert [s.label for s in summary.interests] == [i.label for i in prof.interests]


def test_profile_of_an_unknown_user_raises_unknown_id(fitted):
    with pytest.raises(UnknownIdError, match="nobody"):
        profile_for(fitted, "nobody")


def test_single_vector_model_gets_clustered_interests():
    torch.manual_seed(0)
    m = build_model("lstm", 16, {"dim": 8})
    with torch.no_grad():  # two clear directions in item space
        m.items.id.weight[1:9] = torch.tensor([1.0] + [0.0] * 7)
        m.items.id.weight[9:17] = torch.tensor([0.0, 1.0] + [0.0] * 6)
    hist = np.array([0, 1, 2, 3, 4, 8, 9, 10])
    prof = build_profile(m, hist, None, [f"i{j}" for j in range(16)])
    assert prof.source == "kmeans" and len(prof) == 2
    groups = sorted(sorted(i.top_items) for i in prof.interests)
    assert groups == [["i0", "i1", "i2", "i3", "i4"], ["i10", "i8", "i9"]]


def test_kmeans_is_deterministic_and_separates_clusters():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    a, b = kmeans(x, 2), kmeans(x, 2)
    assert (a == b).all() and a[0] == a[1] != a[2] == a[3]


def _two_interests(rec: Recommender) -> tuple[str, set[int]]:
    """A switching user whose profile weighs both interests (each >= 5%; category-routed
    interests hand the old one little weight once the switch is a few events old)."""
    for r in range(len(rec.users_)):
        row = rec.histories_.row(r)
        if row[0] < 8 and 8 <= row[-1] < 16:
            user = rec.users_.ids(np.array([r]))[0]
            heavy = {i.component for i in profile_for(rec, user).interests if i.weight >= 0.05}
            if len(heavy) >= 2:
                return user, heavy
    raise AssertionError("no switching user with two weighty interests in the fixture")


def test_composed_list_serves_both_interests_at_full_diversity(fitted):
    user, heavy = _two_interests(fitted)
    prof = profile_for(fitted, user)
    frame = compose_for(fitted, user, k=8, diversity=1.0, filter_seen=False)
    assert list(frame.columns) == ["rank", "item", "title", "score", "interest",
                                   "interest_label", "reason"]
    assert set(frame["interest"]) == heavy
    assert frame["reason"].str.startswith("serves your interest in").all()
    # each pick names the interest that scores it best among the heavy ones (here the
    # interests are next-item predictors: after kitchenware some users go on to running gear)
    assert (frame["interest_label"] == frame["interest"].map(
        {i.component: i.label for i in prof.interests})).all()


def test_zero_diversity_ranks_by_relevance(fitted):
    frame = compose_for(fitted, _switcher(fitted), k=5, diversity=0.0, filter_seen=False)
    assert (np.diff(frame["score"].to_numpy()) <= 1e-6).all()


def test_composed_list_filters_seen_items_and_excluded_categories(fitted):
    user = _switcher(fitted)
    seen = set(fitted.items_.ids(fitted.histories_.row(fitted.users_.index_of(user))))
    frame = compose_for(fitted, user, k=4, exclude_categories=["kitchenware"])
    assert not set(frame["item"]) & seen
    assert not frame["item"].map(lambda i: 8 <= int(i[1:]) < 16).any()
    frame = compose_for(fitted, user, k=3, exclude_ids=["i08", "i09"], filter_seen=False)
    assert not {"i08", "i09"} & set(frame["item"])


def test_an_interest_of_one_or_two_events_is_marked_stray_everywhere_it_is_shown():
    torch.manual_seed(0)
    m = build_model("gru", 24, {"dim": 8, "interests": 3}).eval()
    with torch.no_grad():  # items 0-7, 8-15, 16-23 point three clear ways
        for g in range(3):
            m.items.id.weight[1 + 8 * g:9 + 8 * g] = torch.eye(8)[g] + 0.05 * torch.randn(8, 8)
    history = np.array([0, 3, 5, 1, 2, 17, 4, 6, 7, 0, 9, 12, 2])  # one event of group 2,
    prof = build_profile(m, history, None, [f"i{j}" for j in range(24)])  # two of group 1
    by_events = {i.n_events: i for i in prof.interests}
    assert sorted(by_events) == [1, 2, 10]
    assert by_events[1].stray and by_events[2].stray and not by_events[10].stray
    docs = {d["n_events"]: d for d in prof.to_dict()["interests"]}
    assert docs[1]["stray"] is True and docs[10]["stray"] is False
    lines = str(prof).splitlines()[1:]
    assert [("stray," in line) for line in lines] == [i.stray for i in prof.interests]
    assert not any(i.stray for i in build_profile(m, history, None, [f"i{j}" for j in range(24)],
                                                 stray_events=1).interests)
