"""Baselines: MostPopular, ItemKNN, EASE (against a dense reference), lambda tuning, real data."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, leave_one_out
from prismrec.errors import DataError
from prismrec.eval import (
    BASELINES,
    EASE,
    ItemKNN,
    MostPopular,
    Scorer,
    evaluate,
    select_on_validation,
    tune_ease,
)


def histories(*rows) -> Sequences:
    return Sequences.from_lists([list(r) for r in rows])


def test_registry_names_the_three_baselines():
    assert BASELINES == {"pop": MostPopular, "itemknn": ItemKNN, "ease": EASE}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_each_baseline_fits_and_scores_the_whole_catalogue(name):
    train = histories([0, 1, 2], [1, 2, 3], [0, 3, 4])
    model = BASELINES[name]()
    assert not any(k.endswith("_") for k in vars(model))  # __init__ stores parameters only
    with pytest.raises(ValueError, match="not fitted"):
        model.score(np.array([0]), histories([0]))
    assert model.fit(train, 6) is model
    scores = model.score(np.array([0, 1]), histories([0], [2, 3]))
    assert isinstance(model, Scorer)
    assert scores.shape == (2, 6) and scores.dtype == np.float32
    with pytest.raises(DataError, match="n_items"):
        BASELINES[name]().fit(train, 4)  # item 4 does not fit a 4-item catalogue


def test_most_popular_ranks_by_training_count():
    train = histories([2, 2, 1], [2, 0], [1, 3])
    model = MostPopular().fit(train, 5)
    scores = model.score(np.array([0, 1]), histories([0], []))
    np.testing.assert_array_equal(scores, [[1, 2, 3, 1, 0]] * 2)


def test_itemknn_recommends_the_co_occurring_item():
    train = histories([0, 1], [0, 1], [1, 0, 4], [2, 3], [3, 2])
    model = ItemKNN().fit(train, 5)
    scores = model.score(np.array([0]), histories([0]))
    assert int(np.argmax(np.where(np.arange(5) == 0, -np.inf, scores[0]))) == 1
    assert scores[0, 2] == scores[0, 3] == 0.0  # never bought with item 0


def test_itemknn_cosine_values_without_shrink():
    train = histories([0, 1], [0, 1], [0, 2])
    model = ItemKNN(shrink=0.0).fit(train, 3)
    sim = model.similarity_.toarray()
    # item 0: 3 users, item 1: 2 users (both with 0), item 2: 1 user (with 0)
    np.testing.assert_allclose(sim[0], [0, 2 / np.sqrt(6), 1 / np.sqrt(3)], rtol=1e-6)
    np.testing.assert_allclose(sim[1], [2 / np.sqrt(6), 0, 0], rtol=1e-6)


def test_itemknn_keeps_only_the_nearest_neighbours():
    train = histories([0, 1], [0, 1], [0, 2])
    sim = ItemKNN(neighbours=1).fit(train, 3).similarity_.toarray()
    assert (sim > 0).sum(axis=1).tolist() == [1, 1, 1]
    assert sim[0, 1] > 0 and sim[0, 2] == 0


def test_itemknn_window_and_decay_favour_recent_items():
    train = histories([0, 1], [0, 1], [2, 3], [2, 3])
    h = histories([0, 2])  # item 2 is the most recent
    full = ItemKNN().fit(train, 4).score(np.array([0]), h)[0]
    assert full[1] == pytest.approx(full[3])
    last = ItemKNN(window=1).fit(train, 4).score(np.array([0]), h)[0]
    assert last[1] == 0.0 and last[3] > 0
    decayed = ItemKNN(decay=0.5).fit(train, 4).score(np.array([0]), h)[0]
    assert decayed[3] == pytest.approx(2 * decayed[1])


def dense_ease(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck (2019), Algorithm 1, in plain numpy."""
    g = x.T @ x + lam * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_matches_the_dense_reference():
    rng = np.random.default_rng(0)
    x = (rng.random((60, 25)) < 0.2).astype(np.float64)
    rows = [np.flatnonzero(r).tolist() for r in x]
    model = EASE(lam=3.0).fit(histories(*rows), 25)
    ref = dense_ease(x, 3.0)
    np.testing.assert_allclose(model.weights_, ref, atol=1e-5)
    assert np.all(np.diag(model.weights_) == 0)  # an item may not predict itself
    hist = histories(rows[0], rows[1], [])
    expected = np.vstack([x[0] @ ref, x[1] @ ref, np.zeros(25)])  # (3, 25)
    np.testing.assert_allclose(model.score(np.arange(3), hist), expected, atol=1e-4)


def test_ease_counts_a_repeated_item_once():
    train = histories([0, 1], [0, 1, 2], [2, 3])
    model = EASE(lam=1.0).fit(train, 4)
    once = model.score(np.array([0]), histories([0, 2]))
    twice = model.score(np.array([0]), histories([0, 2, 0, 0]))
    np.testing.assert_array_equal(once, twice)


def paired_data(n_pairs=10, n_users=300, seed=0):
    """Items come in pairs (2j, 2j+1) that are always bought together, plus noise items."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_users):
        pairs = rng.choice(n_pairs, size=2, replace=False)
        noise = rng.integers(2 * n_pairs, 2 * n_pairs + 10, size=2)
        rows.append([*(2 * pairs), *(2 * pairs + 1), *noise])
    return histories(*rows), 2 * n_pairs + 10


def test_ease_recovers_a_planted_item_pair():
    train, n = paired_data()
    model = EASE(lam=10.0).fit(train, n)
    for j in range(10):
        scores = model.score(np.array([0]), histories([2 * j]))[0]
        scores[2 * j] = -np.inf
        assert int(np.argmax(scores)) == 2 * j + 1


def loo_on_pairs():
    """Each user: a noise item, then a pair in order, so the last item is predictable."""
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(200):
        a, b = rng.choice(8, size=2, replace=False)
        rows.append([16 + int(rng.integers(0, 6)), 2 * a, 2 * a + 1, 2 * b, 2 * b + 1])
    return leave_one_out(histories(*rows)), 22


def test_tune_ease_picks_the_best_validation_point():
    split, n = loo_on_pairs()
    grid = (0.5, 50.0, 5000.0)
    best, table = tune_ease(split.train, split.valid, n, lambdas=grid)
    assert list(table.columns) == ["lam", "ndcg@10"] and table["lam"].tolist() == list(grid)
    assert best == table["lam"][table["ndcg@10"].idxmax()]
    assert table["ndcg@10"].nunique() > 1  # the grid matters on this data
    direct = evaluate(EASE(best).fit(split.train, n), split.valid, ks=(10,), n_bootstrap=0)
    assert direct["ndcg@10"] == pytest.approx(table["ndcg@10"].max())
    same, _, generic = select_on_validation(EASE, grid, split.train, split.valid, n)
    assert same == best
    np.testing.assert_allclose(generic["ndcg@10"], table["ndcg@10"])


def test_baselines_beat_popularity_on_a_predictable_sequence():
    split, n = loo_on_pairs()
    pop = evaluate(MostPopular().fit(split.train, n), split.test, n_bootstrap=0)
    knn = evaluate(ItemKNN().fit(split.train, n), split.test, n_bootstrap=0)
    ease = evaluate(EASE(10.0).fit(split.train, n), split.test, n_bootstrap=0)
    assert knn["hr@10"] > 0.9 and ease["hr@10"] > 0.9
    assert knn["ndcg@10"] > pop["ndcg@10"] + 0.3 and ease["ndcg@10"] > pop["ndcg@10"] + 0.3


def read_recbole_cases(path) -> EvalCases:
    """A RecBole .inter file with one (history, target) row per case."""
    df = pd.read_csv(path, sep="\t", dtype=str)
    df.columns = [c.split(":")[0] for c in df.columns]
    hist = [np.array(s.split(), dtype=np.int64) for s in df["item_id_list"]]
    targets = [[int(t)] for t in df["item_id"]]
    users = df["user_id"].astype(np.int64).to_numpy()
    return EvalCases(users, Sequences.from_lists(hist), Sequences.from_lists(targets))


@pytest.mark.data
@pytest.mark.slow
def test_scientific_given_split_matches_reference_numbers(shared_data):
    root = shared_data / "amazon-scientific-unisrec"
    n_items = len(pd.read_csv(root / "Scientific.item2index", sep="\t", header=None))
    valid = read_recbole_cases(root / "Scientific.valid.inter")
    test = read_recbole_cases(root / "Scientific.test.inter")
    train = valid.history  # per user, the longest training prefix
    assert n_items == 4385 and len(test) == 8442

    best, table = tune_ease(train, valid, n_items, lambdas=(500.0, 50.0))
    assert best == 50.0, table
    start = time.perf_counter()
    ease = EASE(best).fit(train, n_items)
    assert time.perf_counter() - start < 60  # seconds on 2 cores, with headroom for load
    r_ease = evaluate(ease, test, ks=(10,), n_bootstrap=0)
    r_pop = evaluate(MostPopular().fit(train, n_items), test, ks=(10,), n_bootstrap=0)
    assert 0.080 <= r_ease["ndcg@10"] <= 0.100
    assert 0.014 <= r_pop["ndcg@10"] <= 0.022
