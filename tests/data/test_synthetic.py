"""The synthetic shop: deterministic, sized as asked, and its ground truth matches its events."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from prismrec.data import Catalog, Interactions
from prismrec.data.synthetic import SyntheticConfig, SyntheticData, generate

SMALL = {"n_users": 600, "n_items": 400, "seed": 1}


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(**SMALL)


def item_category(data: SyntheticData) -> np.ndarray:
    """Category index of every event's item, from the catalogue text (not from the truth)."""
    index = {name: i for i, name in enumerate(data.categories)}
    per_item = data.catalog.frame["categories"].map(lambda c: index[c[0]])
    return per_item.reindex(data.interactions.frame["item"]).to_numpy()


def same_session_pairs(f: pd.DataFrame) -> np.ndarray:
    """Mask over rows 0..E-2: row r and r+1 are consecutive events of one user's session."""
    return ((f["user"].to_numpy()[1:] == f["user"].to_numpy()[:-1])
            & (f["session"].to_numpy()[1:] == f["session"].to_numpy()[:-1]))


# --- configuration ---------------------------------------------------------------------------


def test_config_round_trips_through_a_json_dict():
    cfg = SyntheticConfig(n_users=77, event_mix=(0.6, 0.3, 0.1), noise_rate=0.0, seed=9)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert SyntheticConfig.from_dict(d) == cfg


@pytest.mark.parametrize("bad", [{"n_categories": 13}, {"n_items": 10}, {"max_interests": 9},
                                 {"event_mix": (0.5, 0.5, 0.5)}, {"noise_rate": 1.5}])
def test_bad_config_values_are_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SyntheticConfig(**bad)


def test_unknown_override_is_refused_with_the_known_fields():
    with pytest.raises(ValueError, match="n_user.*known"):
        generate(n_user=10)


# --- determinism and sizes -------------------------------------------------------------------


def test_same_seed_gives_the_same_data_and_overrides_equal_a_config(data):
    again = generate(SyntheticConfig(**SMALL))
    pd.testing.assert_frame_equal(data.interactions.frame, again.interactions.frame)
    pd.testing.assert_frame_equal(data.catalog.frame, again.catalog.frame)
    pd.testing.assert_frame_equal(data.user_interests, again.user_interests)


def test_a_different_seed_gives_different_events_and_items(data):
    other = generate(**{**SMALL, "seed": 2})
    assert not data.interactions.frame["item"].equals(other.interactions.frame["item"])
    assert not data.catalog.frame["title"].equals(other.catalog.frame["title"])


def test_the_catalogue_does_not_depend_on_the_number_of_users(data):
    fewer = generate(**{**SMALL, "n_users": 50})
    pd.testing.assert_frame_equal(data.catalog.frame, fewer.catalog.frame)


def test_sizes_are_honoured():
    cfg = SyntheticConfig(n_users=2000, n_items=250, n_categories=10, events_per_user=40.0,
                          min_events_per_user=5)
    d = generate(cfg)
    f = d.interactions.frame
    per_user = f.groupby("user").size()
    assert len(per_user) == 2000
    assert per_user.min() >= 5
    assert abs(len(f) / cfg.expected_events - 1) < 0.1  # heavy-tailed activity: ~2% sd here
    assert len(d.catalog) == 250
    assert len(d.categories) == 10
    assert set(d.catalog.frame["categories"].str[0]) == set(d.categories)


def test_ids_are_padded_strings_and_times_increase_within_each_user(data):
    f = data.interactions.frame
    assert f["user"].map(lambda u: re.fullmatch(r"u\d{4}", u) is not None).all()
    assert f["item"].map(lambda i: re.fullmatch(r"i\d{5}", i) is not None).all()
    same_user = f["user"].to_numpy()[1:] == f["user"].to_numpy()[:-1]
    step = np.diff(f["timestamp"].to_numpy())
    assert (step[same_user] >= 1).all()
    assert (f["timestamp"] >= data.config.start_time).all()


def test_sessions_are_minutes_long_and_hours_apart(data):
    f = data.interactions.frame
    pairs = same_session_pairs(f)
    same_user = f["user"].to_numpy()[1:] == f["user"].to_numpy()[:-1]
    step = np.diff(f["timestamp"].to_numpy())
    assert np.median(step[pairs]) < 300
    assert step[same_user & ~pairs].min() >= 3600


def test_views_outnumber_clicks_which_outnumber_purchases(data):
    share = data.interactions.frame["event"].value_counts(normalize=True)
    assert share["view"] > 0.6 and share["view"] > share["click"] > share["purchase"] > 0.03


# --- ground truth ----------------------------------------------------------------------------


def test_event_interest_is_the_interest_column_and_a_valid_category(data):
    f = data.interactions.frame
    assert len(data.event_interest) == len(f)
    np.testing.assert_array_equal(data.event_interest, f["interest"].to_numpy())
    assert data.event_interest.min() >= 0 and data.event_interest.max() < len(data.categories)


def test_items_belong_to_the_active_interest_except_the_noise_rate(data):
    mismatch = np.mean(item_category(data) != data.event_interest)
    assert 0 < mismatch <= 1.5 * data.config.noise_rate


def test_without_noise_every_item_belongs_to_the_active_interest():
    d = generate(**{**SMALL, "noise_rate": 0.0})
    np.testing.assert_array_equal(item_category(d), d.event_interest)


def test_each_session_follows_one_interest(data):
    f = data.interactions.frame
    assert (f.groupby(["user", "session"])["interest"].nunique() == 1).all()


def test_interest_weights_cover_every_session_and_sum_to_one(data):
    truth = data.user_interests
    sums = truth.groupby(["user", "session"])["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    sessions = data.interactions.frame.groupby(["user", "session"]).size()
    assert len(sums) == len(sessions)
    assert (truth.groupby("user")["interest"].nunique()
            <= data.config.max_interests).all()


def test_events_only_follow_interests_with_weight_at_that_session(data):
    f = data.interactions.frame
    joined = f.merge(data.user_interests, on=["user", "session", "interest"], how="left")
    assert len(joined) == len(f)
    assert (joined["weight"] > 0).all()


def test_interests_drift_some_appear_mid_history_and_weights_change(data):
    truth = data.user_interests
    w = truth.pivot_table(index=["user", "session"], columns="interest", values="weight")
    first = w.groupby(level="user").first()
    later_max = w.groupby(level="user").max()
    gained = ((first == 0) & (later_max > 0.2)).any(axis=1)
    assert gained.mean() > 0.1  # a good share of users pick up a new interest mid-history
    last = w.groupby(level="user").last()
    change = (last - first).abs().sum(axis=1)
    assert change.median() > 0.2


def half_shift(d: SyntheticData) -> float:
    """Mean total-variation distance between each user's category mix in the two halves."""
    f = d.interactions.frame.assign(category=item_category(d))
    size = f.groupby("user")["item"].transform("size")
    f["late"] = f.groupby("user").cumcount() >= size / 2
    mix = f.groupby(["user", "late"])["category"].value_counts(normalize=True)
    mix = mix.unstack(fill_value=0.0)
    early, late = mix.xs(False, level="late"), mix.xs(True, level="late")
    return float(0.5 * (early - late).abs().sum(axis=1).mean())


def test_observed_category_mix_shifts_more_with_drift_than_without():
    """Observable drift: a user's early and late behaviour differ beyond session-level chance."""
    long = {"n_users": 300, "n_items": 300, "events_per_user": 200.0,
            "events_per_user_shape": 50.0, "seed": 4}  # ~40 sessions each, so chance is low
    still = {"interest_appear_prob": 0.0, "interest_fade_prob": 0.0, "weight_drift": 0.0}
    assert half_shift(generate(**long)) > half_shift(generate(**long, **still)) + 0.04


# --- items: release, popularity, order, text -------------------------------------------------


def test_items_appear_only_after_their_release_and_new_items_do_appear(data):
    f = data.interactions.frame
    release = data.catalog.frame["release_time"].reindex(f["item"]).to_numpy()
    assert (f["timestamp"].to_numpy() >= release).all()
    new = release > data.config.start_time
    assert new.sum() > 0.02 * len(f)


def test_popularity_is_skewed(data):
    counts = data.interactions.frame["item"].value_counts()
    top = int(0.1 * len(data.catalog))
    assert counts.iloc[:top].sum() / counts.sum() > 0.3


def accessory_lift(d: SyntheticData) -> float:
    """P(next is an accessory of the same category | main product bought) over the chance level."""
    f = d.interactions.frame
    role = d.catalog.frame["role"].reindex(f["item"]).to_numpy()
    cat = item_category(d)
    pairs = same_session_pairs(f)
    main_bought = (f["event"].to_numpy()[:-1] == "purchase") & (role[:-1] == "main")
    acc_next = (role[1:] == "accessory") & (cat[1:] == cat[:-1])
    after_main = acc_next[pairs & main_bought].mean()
    chance = acc_next[pairs & ~main_bought].mean()
    return after_main / chance


def test_an_accessory_follows_a_main_product_purchase_far_above_chance(data):
    assert accessory_lift(data) > 2.0


def test_without_accessory_rule_the_lift_disappears():
    assert accessory_lift(generate(**{**SMALL, "accessory_prob": 0.0})) < 1.3


def test_titles_of_different_categories_are_distinguishable(data):
    """A bag-of-words nearest-centroid classifier trained on half the titles names the rest."""
    c = data.catalog.frame
    words = [re.findall(r"[a-z0-9'-]+", t.lower()) for t in c["title"]]
    vocab = {w: j for j, w in enumerate(sorted({w for ws in words for w in ws}))}
    x = np.zeros((len(c), len(vocab)))
    for r, ws in enumerate(words):
        for w in ws:
            x[r, vocab[w]] += 1
    y = np.array([data.categories.index(cs[0]) for cs in c["categories"]])
    train = np.arange(len(c)) % 2 == 0
    centroids = np.stack([x[train & (y == k)].mean(axis=0) for k in range(len(data.categories))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    pred = np.argmax(x[~train] @ centroids.T, axis=1)
    assert np.mean(pred == y[~train]) > 0.95


def test_descriptions_name_the_brand_and_accessories_their_main_product(data):
    c = data.catalog.frame
    assert all(b in d for b, d in zip(c["brand"], c["description"], strict=True))
    acc = c[c["role"] == "accessory"]
    assert len(acc) > 0 and acc["description"].str.contains("made to go with your").all()


# --- export ----------------------------------------------------------------------------------


def test_to_dataset_indexes_items_in_catalogue_order_with_all_events(data):
    ds = data.to_dataset()
    assert ds.name == "synthetic"
    assert ds.items.to_list() == data.catalog.ids
    assert len(ds.users) == data.config.n_users
    assert ds.sequences.n_events == len(data.interactions)
    f = data.interactions.frame
    first_user = f[f["user"] == ds.users.to_list()[0]]
    expected = [int(i[1:]) for i in first_user["item"]]
    assert ds.sequences.row(0).tolist() == expected


def test_saved_files_read_back_with_the_generic_readers(data, tmp_path):
    data.save(tmp_path)
    events = pd.read_csv(tmp_path / "events.csv")
    assert list(events.columns) == ["user", "item", "timestamp", "event"]
    inter = Interactions.from_frame(events, event="event")
    f = data.interactions.frame
    for col in ("user", "item", "timestamp", "event"):
        np.testing.assert_array_equal(inter.frame[col].to_numpy(), f[col].to_numpy())
    items = pd.read_csv(tmp_path / "items.csv")
    cat = Catalog.from_frame(items, description="description", categories="categories",
                             brand="brand")
    assert cat.ids == data.catalog.ids
    assert list(cat.frame["categories"]) == list(data.catalog.frame["categories"])
    assert list(cat.frame["title"]) == list(data.catalog.frame["title"])
    truth = pd.read_csv(tmp_path / "truth_events.csv")
    np.testing.assert_array_equal(truth["interest"].to_numpy(), data.event_interest)
    weights = pd.read_csv(tmp_path / "truth_interests.csv")
    assert len(weights) == len(data.user_interests)
    cfg = SyntheticConfig.from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert cfg == data.config
