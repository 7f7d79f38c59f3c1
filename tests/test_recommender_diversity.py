"""recommend(diversity=λ): lists composed from the user's interests, with reasons."""

import pytest

from prismrec import Recommender

TRAIN = {"epochs": 3, "progress": False, "threads": 1, "batch_size": 32, "lr": 3e-3}


def test_diversity_gives_interests_and_reasons(head_gru, shop_data):
    users = list(shop_data.users.ids([0, 1]))
    out = head_gru.recommend(users, k=5, diversity=0.5)
    assert list(out.columns[:5]) == ["user", "rank", "item", "title", "score"]
    assert {"interest", "interest_label", "reason"} <= set(out.columns)
    assert out.groupby("user").size().to_dict() == {u: 5 for u in users}
    assert out["reason"].str.len().min() > 0


def test_excluded_items_are_never_recommended(head_gru, shop_data):
    user = shop_data.users.ids([0])[0]
    top = head_gru.recommend(user, k=3)["item"].tolist()
    again = head_gru.recommend(user, k=3, exclude=top)
    assert not set(top) & set(again["item"])
    composed = head_gru.recommend(user, k=3, diversity=0.5, exclude=top)
    assert not set(top) & set(composed["item"])


def test_without_an_interest_head_composition_uses_the_kmeans_fallback_and_says_so(shop_data):
    rec = Recommender("gru", model_config={"dim": 16}, train_config={**TRAIN, "epochs": 1})
    rec.fit(shop_data)
    user = shop_data.users.ids([0])[0]
    out = rec.recommend(user, k=3, diversity=0.5)
    assert len(out) == 3 and out.attrs["components"] == "kmeans"
    assert "no interest head" in out.attrs["fallback"]
    assert set(out["interest"]) <= {i.component for i in rec.profile(user).interests}
    assert rec.recommend(user, k=3, explain=True).attrs == out.attrs


def test_diversity_outside_unit_interval_is_refused(head_gru, shop_data):
    with pytest.raises(ValueError, match=r"diversity must be in \[0, 1\]"):
        head_gru.recommend(shop_data.users.ids([0])[0], k=3, diversity=1.5)
