"""Interests that follow the catalogue's categories (``interest_route="categories"``, or the
default "auto" when the catalogue has categories): the routing vectors are built from the
catalogue at fit, saved with the checkpoint, and give profiles whose interests each hold one
category; the fitted model and its profiles say which routing was used."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec.data.catalog import Catalog
from prismrec.explain.interests import profile_for
from prismrec.recommender import Recommender
from prismrec.recommender._routing import category_vectors

CATS = ["running gear", "kitchenware", "books"]


def _catalog(with_categories: bool = True) -> Catalog:
    """30 items, ten per category; item 29 has no category."""
    cats = [[CATS[j // 10]] if j < 29 else [] for j in range(30)]
    frame = pd.DataFrame({"item": [f"i{j:02d}" for j in range(30)],
                          "title": [f"{CATS[j // 10]} thing {j}" for j in range(30)]})
    if with_categories:
        frame["categories"] = cats
    return Catalog.from_frame(frame, categories="categories" if with_categories else None)


def _events(n_users: int = 120, seed: int = 0) -> pd.DataFrame:
    """Users who follow two of the three categories, interleaved event by event."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        a, b = rng.choice(3, size=2, replace=False)
        n = int(rng.integers(12, 24))
        picks = np.where(rng.random(n) < 0.5, a, b) * 10 + rng.integers(0, 10, n)
        rows += [(f"u{u:03d}", f"i{j:02d}", 100.0 * t) for t, j in enumerate(picks)]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


CONFIG = {"dim": 16, "interests": 3, "dropout": 0.1, "hidden_dropout": 0.1,
          "interest_route": "categories"}
TRAIN = {"epochs": 3, "lr": 5e-3, "progress": False, "threads": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def routed() -> Recommender:
    torch.manual_seed(0)
    return Recommender("lstm", model_config=CONFIG, train_config=TRAIN).fit(
        _events(), _catalog(), valid=False)


def test_routing_vectors_are_the_items_idf_weighted_categories_of_unit_length():
    ids = [f"i{j:02d}" for j in range(30)]
    v = category_vectors(_catalog(), ids)
    assert v.shape == (30, 3)
    np.testing.assert_allclose(np.linalg.norm(v[:29], axis=1), 1.0, rtol=1e-6)
    assert (v[29] == 0).all()  # no category: routed by its item vector alone
    assert (v[:10].argmax(1) == v[0].argmax()).all() and v[0].argmax() != v[10].argmax()


def test_each_interest_of_a_category_routed_profile_holds_one_category(routed):
    # the same fit with interest_route="item" mixes the two categories in every user's
    # components here (they are interleaved event by event), so this has teeth
    for user in ("u000", "u001", "u002", "u003"):
        prof = profile_for(routed, user)
        cats = {}
        for item, k in zip(prof.event_items, prof.event_interest, strict=True):
            cats.setdefault(k, set()).add(int(item[1:]) // 10)
        assert all(len(c) == 1 for c in cats.values()), (user, cats)
        assert {i.label for i in prof.interests if not i.stray} <= set(CATS)


def test_the_routing_vectors_travel_with_the_checkpoint(routed, tmp_path):
    routed.save(tmp_path / "ck")
    back = Recommender.load(tmp_path / "ck")
    assert back.model_.config.interest_route == "categories"
    torch.testing.assert_close(back.model_.route_vectors, routed.model_.route_vectors)
    a, b = profile_for(routed, "u005"), profile_for(back, "u005")
    assert a.event_interest == b.event_interest
    np.testing.assert_allclose(a.weights(), b.weights(), atol=1e-6)


def test_a_checkpoint_from_before_routing_still_loads(tmp_path):
    torch.manual_seed(0)
    rec = Recommender("lstm", model_config={"dim": 8, "interests": 2, "interest_route": "item"},
                      train_config={**TRAIN, "epochs": 1}).fit(_events(30), _catalog(),
                                                              valid=False)
    rec.save(tmp_path / "old")
    doc_path = tmp_path / "old" / "checkpoint.json"
    doc = json.loads(doc_path.read_text())
    for key in ("interest_route", "route_dim", "route_weight"):  # what older versions wrote
        del doc["model_config"][key]
    doc_path.write_text(json.dumps(doc))
    back = Recommender.load(tmp_path / "old")
    assert back.model_.config.interest_route == "item" and back.model_.config.route_dim == 0
    assert back.recommend("u001", k=3)["item"].tolist() == rec.recommend("u001", k=3)[
        "item"].tolist()


def test_category_routing_without_catalogue_categories_is_refused_before_training():
    rec = Recommender("lstm", model_config=CONFIG, train_config=TRAIN)
    with pytest.raises(ValueError, match="catalogue that has a 'categories' column"):
        rec.fit(_events(20), _catalog(with_categories=False), valid=False)
    assert not hasattr(rec, "model_")


AUTO = {k: v for k, v in CONFIG.items() if k != "interest_route"}  # the default: "auto"


def _fit(config: dict, catalog: Catalog | None, n_users: int = 40) -> Recommender:
    torch.manual_seed(0)
    return Recommender("lstm", model_config=config, train_config={**TRAIN, "epochs": 1}).fit(
        _events(n_users), catalog, valid=False)


def test_by_default_the_head_routes_by_categories_when_the_catalogue_has_them(tmp_path):
    rec = _fit(AUTO, _catalog(), n_users=120)
    assert rec.model_.config.interest_route == "categories"  # resolved, not "auto"
    ids = rec.items_.to_list()
    np.testing.assert_allclose(rec.model_.route_vectors[1:].numpy(), category_vectors(
        _catalog(), ids))
    prof = profile_for(rec, "u001")
    assert prof.routing == "categories" and prof.to_dict()["routing"] == "categories"
    assert "routed by catalogue categories" in str(prof)
    cats = {}
    for item, k in zip(prof.event_items, prof.event_interest, strict=True):
        cats.setdefault(k, set()).add(int(item[1:]) // 10)
    assert all(len(c) == 1 for c in cats.values()), cats
    rec.save(tmp_path / "ck")  # the checkpoint holds what was used
    doc = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert doc["model_config"]["interest_route"] == "categories"
    assert Recommender.load(tmp_path / "ck").model_.config.interest_route == "categories"


@pytest.mark.parametrize("catalog", [None, _catalog(with_categories=False)],
                         ids=["no catalogue", "catalogue without categories"])
def test_by_default_without_categories_the_head_routes_by_item_and_says_so(catalog, tmp_path):
    rec = _fit(AUTO, catalog)
    assert rec.model_.config.interest_route == "item" and rec.model_.config.route_dim == 0
    assert not hasattr(rec.model_, "route_vectors")
    prof = profile_for(rec, "u001")
    assert prof.to_dict()["routing"] == "item" and "routed by item vectors" in str(prof)
    rec.save(tmp_path / "ck")
    doc = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert doc["model_config"]["interest_route"] == "item"


@pytest.mark.parametrize(("config", "profile_routing"), [
    ({"dim": 8}, None),  # no interest head: k-means clusters, nothing routes
    ({"dim": 8, "interests": 3, "interest_head": "comirec"}, None),  # a head that cannot route
    ({"dim": 8, "interests": 3, "interest_route": "item"}, "item"),  # item routing asked for
], ids=["no head", "comirec", "item"])
def test_category_routing_needs_the_decay_head_and_is_not_forced(config, profile_routing):
    rec = _fit(config, _catalog())
    assert rec.model_.config.interest_route == "item"
    assert not hasattr(rec.model_, "route_vectors")
    prof = profile_for(rec, "u001")
    assert prof.routing == profile_routing and prof.to_dict()["routing"] == profile_routing
