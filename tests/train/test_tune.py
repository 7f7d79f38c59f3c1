"""Hyper-parameter search: declared grid or random subset, chosen on validation only."""

import pytest

from prismrec.data import leave_one_out
from prismrec.testing import CYCLE_ITEMS, cycle_sequences
from prismrec.train import tune

BASE = {"epochs": 3, "patience": 0, "progress": False, "threads": 1,
        "valid_filter_seen": False}  # cycles repeat items: filtering would hide every answer


@pytest.fixture(scope="module")
def split():
    return leave_one_out(cycle_sequences(60))


def test_grid_search_tries_every_combination_and_ranks_by_validation(split):
    table = tune("gru", split.train, split.valid, CYCLE_ITEMS,
                 {"dim": [8, 16], "lr": [1e-4, 1e-2]}, train_config=BASE)
    assert len(table) == 4
    assert set(map(tuple, table[["dim", "lr"]].to_numpy().tolist())) == {
        (8, 1e-4), (8, 1e-2), (16, 1e-4), (16, 1e-2)}
    scores = table["valid_ndcg@10"].tolist()
    assert scores == sorted(scores, reverse=True)
    assert table.attrs["best"] == {"dim": table.loc[0, "dim"], "lr": table.loc[0, "lr"]}
    assert table.attrs["best"]["lr"] == 1e-2  # 3 epochs at lr 1e-4 learn nothing


def test_random_search_tries_the_requested_number_of_distinct_settings(split):
    table = tune("sasrec", split.train, split.valid, CYCLE_ITEMS,
                 {"dim": [8, 16], "model.max_len": [5, 10], "train.lr": [1e-3, 1e-2]},
                 search="random", n_trials=3, train_config=BASE)
    assert len(table) == 3
    assert len(set(map(tuple, table[["dim", "model.max_len", "train.lr"]].to_numpy()))) == 3


def test_ambiguous_and_unknown_settings_are_named(split):
    with pytest.raises(ValueError, match="model.max_len or train.max_len"):
        tune("sasrec", split.train, split.valid, CYCLE_ITEMS, {"max_len": [5]})
    with pytest.raises(ValueError, match="unknown setting 'depth'"):
        tune("lstm", split.train, split.valid, CYCLE_ITEMS, {"depth": [1]})


def test_category_routed_trials_take_the_routing_vectors(split):
    import numpy as np

    routes = np.eye(2, dtype=np.float32)[np.arange(CYCLE_ITEMS) % 2]  # two "categories"
    config = {"interests": 2, "interest_route": "categories"}
    table = tune("lstm", split.train, split.valid, CYCLE_ITEMS, {"route_weight": [0.5, 1.0]},
                 model_config=config, train_config=BASE, route_vectors=routes)
    assert sorted(table["route_weight"]) == [0.5, 1.0]
    with pytest.raises(ValueError, match="needs routing vectors"):
        tune("lstm", split.train, split.valid, CYCLE_ITEMS, {"route_weight": [1.0]},
             model_config=config, train_config=BASE)
