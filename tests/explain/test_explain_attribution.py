"""Reasons are faithful: they cite the history items the model's own score depends on most."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec import Recommender
from prismrec.data.sequences import Sequences
from prismrec.errors import UnknownIdError
from prismrec.explain.attribution import interest_scorer, occlusion, served_scorer
from prismrec.train.inference import score_sequences

TRAIN = {"epochs": 3, "progress": False, "threads": 1, "batch_size": 32, "lr": 3e-3}


def _history(rec, user):
    r = rec.users_.index_of(user)
    return rec.histories_.row(r), rec.histories_.row_times(r)


def _served_drop(rec, items, times, target: int) -> dict[str, float]:
    """Each distinct history item's contribution, one history at a time through rec.score."""
    ids = rec.items_.to_list()
    full = rec.score(np.zeros(1), Sequences.from_lists([items], [times]))[0, target]
    out = {}
    for it in np.unique(items):
        keep = items != it
        s = rec.score(np.zeros(1), Sequences.from_lists([items[keep]], [times[keep]]))
        out[ids[it]] = float(full - s[0, target])
    return out


def _relevance(model, items, times, target: int) -> float:
    """max_k w_k s_k(target) from the head, for one history, unbatched."""
    if len(items) == 0:
        return float(model.out_bias[target]) if model.out_bias is not None else 0.0
    gaps = np.concatenate([[-1.0], np.diff(times)])
    with torch.no_grad():
        model.eval()
        it = model.interests(torch.from_numpy(items)[None], torch.tensor([len(items)]),
                             torch.from_numpy(gaps)[None] if model.gap_emb is not None
                             else None)
        w = it.weights[0] / it.weights[0].sum()
        s = it.vectors[0] @ model.output_table()[target]
        if model.out_bias is not None:
            s = s + model.out_bias[target]
        return float(torch.where(w > 0, w * s, -torch.inf).max())


def _cited(frame_row, titles) -> list[str]:
    reason = frame_row["reason"]
    said = reason.split("because you viewed ", 1)[1] if "because" in reason else ""
    return [i for i, t in titles.items() if t and t in said]


def test_a_reason_never_cites_an_item_below_the_median_contribution(head_gru, shop_data):
    titles = dict(zip(head_gru.catalog_.frame.index.astype(str),
                      head_gru.catalog_.frame["title"], strict=True))
    ids = head_gru.items_.to_list()
    checked = 0
    for user in shop_data.users.ids(np.arange(6)):
        items, times = _history(head_gru, user)
        hist_titles = {ids[i]: titles[ids[i]] for i in np.unique(items)}
        out = head_gru.recommend(user, k=4, explain=True)
        for _, row in out.iterrows():
            drop = _served_drop(head_gru, items, times, ids.index(row["item"]))
            median = float(np.median(list(drop.values())))
            for cited in _cited(row, hist_titles):
                assert drop[cited] >= median, (user, row["item"], cited)
                checked += 1
    assert checked > 0


def test_the_first_cited_item_is_the_one_whose_removal_costs_the_score_most(head_gru, shop_data):
    ids = head_gru.items_.to_list()
    user = shop_data.users.ids([3])[0]
    items, times = _history(head_gru, user)
    out = head_gru.recommend(user, k=3, explain=True)
    for _, row in out.iterrows():
        drop = _served_drop(head_gru, items, times, ids.index(row["item"]))
        best = max(drop, key=drop.get)
        title = head_gru.catalog_.frame.loc[best, "title"]
        assert row["reason"].split("because you viewed ", 1)[1].startswith(title)


def test_composed_reasons_follow_the_interest_relevance_that_ranked_the_list(head_gru, shop_data):
    model = head_gru.model_
    user = shop_data.users.ids([5])[0]
    items, times = _history(head_gru, user)
    target = head_gru.items_.index_of(head_gru.recommend(user, k=1, diversity=0.0)
                                      ["item"].iloc[0])
    got = occlusion(interest_scorer(model), items, times, np.array([target]))
    full = _relevance(model, items, times, target)
    assert got.base[0] == pytest.approx(full, rel=1e-4, abs=1e-5)
    for u, it in enumerate(got.items):
        keep = items != it
        expect = full - _relevance(model, items[keep], times[keep], target)
        assert got.drop[u, 0] == pytest.approx(expect, rel=1e-3, abs=1e-4)


def test_served_contributions_match_scoring_each_shorter_history(head_gru, shop_data):
    user = shop_data.users.ids([2])[0]
    items, times = _history(head_gru, user)
    target = 7
    got = occlusion(served_scorer(head_gru), items, times, np.array([target]))
    expect = _served_drop(head_gru, items, times, target)
    ids = head_gru.items_.to_list()
    for u, it in enumerate(got.items):
        assert got.drop[u, 0] == pytest.approx(expect[ids[it]], rel=1e-4, abs=1e-5)
    assert list(got.position) == sorted(got.position)  # ordered by latest occurrence


# --- steering: mute and boost ---------------------------------------------------------------


def _owner(rec, user, item_ids):
    """The interest whose raw score s_k is highest for each item."""
    prof = rec.profile(user)
    table = rec.model_.output_table().detach().numpy()
    bias = rec.model_.out_bias.detach().numpy()
    idx = [rec.items_.index_of(i) for i in item_ids]
    s = prof.vectors @ table[idx].T + bias[idx]  # (K', n)
    return [prof.interests[j].component for j in np.argmax(s, axis=0)]


def test_muting_an_interest_removes_every_item_that_belongs_to_it(head_gru, shop_data):
    user = shop_data.users.ids([1])[0]
    prof = head_gru.profile(user)
    assert len(prof) >= 2
    plain = head_gru.recommend(user, k=8, diversity=0.5)
    muted_id = int(plain["interest"].iloc[0])
    muted = head_gru.recommend(user, k=8, diversity=0.5, mute=[muted_id])
    assert len(muted) == 8
    assert muted_id not in set(muted["interest"])
    assert muted_id not in _owner(head_gru, user, muted["item"])
    owned = [i for i, o in zip(plain["item"], _owner(head_gru, user, plain["item"]),
                               strict=True) if o == muted_id]
    assert owned and not set(owned) & set(muted["item"])


def test_boosting_an_interest_raises_its_share_of_the_list(head_gru, shop_data):
    user = shop_data.users.ids([1])[0]
    prof = head_gru.profile(user)
    light = prof.interests[-1].component  # the lightest interest
    before = head_gru.recommend(user, k=10, diversity=1.0)
    after = head_gru.recommend(user, k=10, diversity=1.0, boost=[light])
    assert (after["interest"] == light).sum() > (before["interest"] == light).sum()


def test_mute_or_boost_alone_composes_at_the_default_diversity(head_gru, shop_data):
    from prismrec.recommender.core import DEFAULT_DIVERSITY

    user = shop_data.users.ids([1])[0]
    heavy = head_gru.profile(user).interests[0].component
    a = head_gru.recommend(user, k=5, boost=[heavy])
    b = head_gru.recommend(user, k=5, diversity=DEFAULT_DIVERSITY, boost=[heavy])
    assert a.equals(b)


def test_unknown_or_contradictory_steering_is_refused_with_the_known_ids(head_gru, shop_data):
    user = shop_data.users.ids([1])[0]
    ids = [i.component for i in head_gru.profile(user).interests]
    with pytest.raises(UnknownIdError, match="has interests " + ", ".join(map(str, ids))):
        head_gru.recommend(user, k=3, mute=[99])
    with pytest.raises(ValueError, match="both muted and boosted"):
        head_gru.recommend(user, k=3, mute=[ids[0]], boost=[ids[0]])
    with pytest.raises(ValueError, match="every interest"):
        head_gru.recommend(user, k=3, mute=ids)


def test_with_a_blend_contributions_include_the_item_item_part(shop_data):
    rec = Recommender("gru", model_config={"dim": 16}, train_config=TRAIN,
                      blend={"lams": [10.0], "decays": [0.8], "weights": [0.5]}).fit(shop_data)
    assert rec.blend_ is not None and rec.item_item_ is not None
    user = shop_data.users.ids([4])[0]
    items, times = _history(rec, user)
    target = int(rec.items_.index_of(rec.recommend(user, k=1)["item"].iloc[0]))
    got = occlusion(served_scorer(rec), items, times, np.array([target]))
    expect = _served_drop(rec, items, times, target)  # rec.score applies the blend
    ids = rec.items_.to_list()
    assert np.allclose(got.drop[:, 0], [expect[ids[i]] for i in got.items], atol=1e-5)
    seq_only = occlusion(lambda s: score_sequences(rec.model_, s).numpy(), items, times,
                         np.array([target]))
    assert not np.allclose(got.drop[:, 0], seq_only.drop[:, 0])  # the blend changes them


def test_a_given_history_gives_the_same_document_and_reasons_as_the_stored_one(head_gru,
                                                                               shop_data):
    from prismrec.explain.interests import compose_for, compose_for_history, profile_of_history

    user = shop_data.users.ids([2])[0]
    items, times = _history(head_gru, user)
    prof = profile_of_history(head_gru, items, times, user=user)
    assert prof.to_dict() == head_gru.profile(user).to_dict()
    a = compose_for_history(head_gru, items, times, user=user, k=4, diversity=0.25,
                            mute=[prof.interests[0].component], profile=prof)
    assert a.equals(compose_for(head_gru, user, 4, diversity=0.25,
                                mute=[prof.interests[0].component]))
    shorter = profile_of_history(head_gru, items[:5], times[:5], user=user)
    assert shorter.to_dict()["n_events"] == 5


def test_any_history_is_explained_from_its_own_contributions(head_gru, shop_data):
    user = shop_data.users.ids([3])[0]
    items, times = _history(head_gru, user)
    ids = head_gru.items_.to_list()
    seq = head_gru.recommend_for_sequence([ids[i] for i in items], k=3, times=list(times),
                                          explain=True)
    same = head_gru.recommend(user, k=3, explain=True).drop(columns="user")
    pd.testing.assert_frame_equal(seq, same)
    assert seq.attrs == same.attrs
