"""The real datasets in ../shared/data load with the counts stated in its README."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prismrec.data import load_dataset
from prismrec.errors import DataError

pytestmark = pytest.mark.data


def test_ml_100k(shared_data):
    ds = load_dataset("ml-100k", shared_data / "ml-100k")
    assert (len(ds.users), len(ds.items), ds.sequences.n_events) == (943, 1682, 100_000)
    assert len(ds.catalog) == 1682 and ds.has_time
    first = ds.interactions.frame.iloc[0]
    assert (first["user"], first["item"], first["value"], first["timestamp"]) == (
        "196", "242", 3.0, 881250949.0)
    assert ds.catalog.frame.loc["1", "title"] == "Toy Story (1995)"
    assert ds.catalog.frame.loc["1", "categories"] == ["Animation", "Children's", "Comedy"]
    assert (ds.sequences.lengths >= 20).all()  # every ML-100K user rated at least 20 movies


def test_ml_latest_small(shared_data):
    ds = load_dataset("ml-latest-small", shared_data / "ml-latest-small")
    assert (len(ds.users), ds.sequences.n_events) == (610, 100_836)
    assert ds.interactions.frame["item"].nunique() == 9_724
    assert len(ds.catalog) == len(ds.items) == 9_742  # unrated catalogue movies are indexed
    tags = ds.catalog.frame.loc["60756", "tags"]
    assert "funny" in tags and "Highly quotable" in tags


def test_ml_1m_without_ratings_is_a_clear_error(shared_data):
    with pytest.raises(DataError, match="ratings.dat"):
        load_dataset("ml-1m", shared_data / "ml-1m")


def test_amazon_scientific(shared_data):
    ds = load_dataset("amazon-scientific", shared_data / "amazon-scientific-unisrec")
    assert (len(ds.users), len(ds.items), len(ds.catalog)) == (8_442, 4_385, 4_385)
    assert not ds.has_time
    s = ds.given_split
    assert len(s.test) == len(s.valid) == 8_442
    # README: test history + test target per user = 59,384 interactions (histories cut to 50)
    assert s.test.history.n_events + len(s.test) == 59_384
    # the training rows still hold the cut items: the full sequences give UniSRec's 59,427
    assert ds.sequences.n_events == 59_427
    assert (s.train.lengths - 1).sum() == 34_101  # one training row per prefix
    assert ds.items.index_of("0") == 0 and ds.catalog.frame.loc["0", "asin"] == "B00TNNWMXI"
    assert s.test.history.lengths.max() == 50


def test_ml_1m_sas(shared_data):
    d = shared_data / "ml-1m-sas"
    stats = json.loads((d / "dataset_stats.json").read_text())
    ds = load_dataset("ml-1m-sas", d)
    assert (len(ds.users), len(ds.items)) == (stats["num_users"], stats["num_items"])
    s = ds.given_split
    assert s.train.n_events == 987_019
    assert (len(s.valid), len(s.test)) == (512, 6_040)
    # known events: all but the second-to-last item of the 5,528 non-validation users
    assert ds.sequences.n_events == stats["num_interactions"] - 5_528
    assert np.array_equal(np.sort(s.valid.users), s.valid.users)
    assert ds.catalog.frame.loc["1", "title"] == "Raiders of the Lost Ark (1981)"
