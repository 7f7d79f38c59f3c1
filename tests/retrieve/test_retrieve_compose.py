"""compose: relevance at diversity 0, weight-proportional quotas at 1, filters always."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prismrec.data.catalog import Catalog
from prismrec.data.vocab import Vocab
from prismrec.retrieve import (
    ComposedList,
    ExactIndex,
    compose,
    compose_many,
    exclusion_mask,
    interest_coverage,
    intra_list_diversity,
    quotas,
)


@pytest.fixture(scope="module")
def three_topics():
    """600 items in three topics (200 each, 8-d); interest j points at topic j."""
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 3.0
    topic = np.repeat(np.arange(3), 200)
    x = (centres[topic] + 0.5 * rng.normal(size=(600, 8))).astype(np.float32)
    interests = (centres + 0.1 * rng.normal(size=(3, 8))).astype(np.float32)
    return ExactIndex(x), x, topic, interests


def relevance_top_k(index, v, w, k, banned=()):
    """Brute force over the whole catalogue: max_j w_j s_j, ties to the lower index."""
    w = np.asarray(w) / np.sum(w)
    rel = (w[:, None] * index.score(v, np.arange(len(index)))).max(0)
    ids = np.setdiff1d(np.arange(len(index)), banned)
    return ids[np.lexsort((ids, -rel[ids]))][:k]


def test_diversity_0_is_the_catalogue_top_k_by_relevance(three_topics):
    index, _, _, v = three_topics
    w = [0.5, 0.3, 0.2]
    out = compose(v, w, index, 20)
    np.testing.assert_array_equal(out.items, relevance_top_k(index, v, w, 20))
    assert (np.diff(out.scores) <= 0).all()


def test_diversity_1_serves_each_interest_its_weighted_quota(three_topics):
    index, _, _, v = three_topics
    for w, k, want in [([0.5, 0.3, 0.2], 10, [5, 3, 2]), ([0.6, 0.25, 0.15], 20, [12, 5, 3]),
                       ([1, 1, 1], 10, [4, 3, 3])]:
        out = compose(v, w, index, k, diversity=1.0)
        assert out.quotas.tolist() == want
        assert np.bincount(out.interest, minlength=3).tolist() == want


def test_each_item_is_tagged_with_the_interest_that_produced_it(three_topics):
    index, _, topic, v = three_topics
    w = np.array([0.5, 0.3, 0.2])
    full = compose(v, w, index, 12, diversity=1.0)
    _, own = index.search(v, 12)  # each interest's own candidate list
    for item, j in zip(full.items, full.interest, strict=True):
        assert item in own[j]
    assert (topic[full.items] == full.interest).all()  # here topics match interests
    rel = compose(v, w, index, 12, diversity=0.0)
    s = index.score(v, rel.items) * w[:, None]  # (K, k)
    np.testing.assert_array_equal(rel.interest, s.argmax(0))
    np.testing.assert_allclose(rel.affinity, index.score(v, rel.items)[rel.interest,
                                                                      np.arange(12)])


def test_diversity_raises_coverage_when_one_interest_dominates_relevance():
    rng = np.random.default_rng(1)
    x = np.vstack([np.eye(4)[0] * 5 + 0.1 * rng.normal(size=(50, 4)),  # strong topic 0
                   np.eye(4)[1] * 1 + 0.1 * rng.normal(size=(50, 4)),
                   np.eye(4)[2] * 1 + 0.1 * rng.normal(size=(50, 4))]).astype(np.float32)
    index = ExactIndex(x)
    v, w = np.eye(4)[:3].astype(np.float32), [0.4, 0.3, 0.3]
    served = [interest_coverage(compose(v, w, index, 10, diversity=d)).served
              for d in (0.0, 0.5, 1.0)]
    assert served == [1, 3, 3]
    half = compose(v, w, index, 10, diversity=0.5)
    assert half.interest[0] == 0 and half.items[0] == compose(v, w, index, 1).items[0]


def test_seen_items_and_excluded_categories_never_appear(three_topics):
    index, _, topic, v = three_topics
    vocab = Vocab([f"i{j}" for j in range(600)])
    cats = np.array(["red", "green", "blue"])[topic]
    catalog = Catalog.from_frame(pd.DataFrame({"item": vocab.to_list(), "title": "t",
                                               "cat": cats}), categories="cat")
    mask = exclusion_mask(600, exclude_categories=["green"], item_vocab=vocab,
                          catalog=catalog)
    seen = compose(v, [0.5, 0.3, 0.2], index, 15).items[:8]
    for d in (0.0, 0.3, 1.0):
        out = compose(v, [0.5, 0.3, 0.2], index, 15, diversity=d, exclude_items=seen,
                      exclude_mask=mask)
        assert len(out) == 15
        assert not np.isin(out.items, seen).any()
        assert not (topic[out.items] == 1).any()
    banned = np.union1d(seen, np.flatnonzero(mask))
    out = compose(v, [0.5, 0.3, 0.2], index, 15, exclude_items=seen, exclude_mask=mask)
    np.testing.assert_array_equal(out.items, relevance_top_k(index, v, [0.5, 0.3, 0.2], 15,
                                                             banned))


@pytest.mark.parametrize("diversity", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_no_duplicates_and_the_same_list_every_run(three_topics, diversity):
    index, _, _, v = three_topics
    a = compose(v, [0.2, 0.2, 0.6], index, 30, diversity=diversity, candidates_per_interest=40)
    b = compose(v, [0.2, 0.2, 0.6], index, 30, diversity=diversity, candidates_per_interest=40)
    assert len(np.unique(a.items)) == len(a) == 30
    for name in ("items", "scores", "interest", "affinity", "quotas"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_duplicate_interests_still_give_distinct_items(three_topics):
    index, _, _, v = three_topics
    same = np.vstack([v[0], v[0]])
    out = compose(same, [0.5, 0.5], index, 10, diversity=1.0)
    assert len(np.unique(out.items)) == 10 and np.bincount(out.interest).tolist() == [5, 5]


def test_batch_equals_one_at_a_time(three_topics):
    index, _, _, v = three_topics
    profiles = [(v, [0.5, 0.3, 0.2]), (v[:2], [1.0, 3.0]), (v[2:], [1.0])]
    seen = [np.array([0, 1, 2]), None, np.arange(400, 450)]
    many = compose_many(profiles, index, 8, diversity=0.5, exclude_items=seen)
    for (pv, pw), s, got in zip(profiles, seen, many, strict=True):
        one = compose(pv, pw, index, 8, diversity=0.5, exclude_items=s)
        np.testing.assert_array_equal(got.items, one.items)
        np.testing.assert_array_equal(got.interest, one.interest)


def test_list_is_shorter_when_fewer_items_are_eligible():
    x = np.eye(3, dtype=np.float32)
    out = compose(x[:2], [0.5, 0.5], ExactIndex(x), 5, diversity=1.0,
                  exclude_items=np.array([2]))
    assert sorted(out.items.tolist()) == [0, 1] and len(out.interest) == 2


def test_zero_weight_interest_is_never_credited(three_topics):
    index, _, _, v = three_topics
    for d in (0.0, 1.0):
        out = compose(v, [0.6, 0.4, 0.0], index, 10, diversity=d)
        assert 2 not in out.interest


def test_quotas_are_largest_remainder_with_a_floor():
    assert quotas(np.array([0.5, 0.3, 0.2]), 10).tolist() == [5, 3, 2]
    assert quotas(np.array([1, 1, 1]), 10).tolist() == [4, 3, 3]
    assert quotas(np.array([0.9, 0.06, 0.04]), 10).tolist() == [9, 1, 0]  # 0.06 >= floor
    assert quotas(np.array([0.9, 0.06, 0.04]), 10, min_weight=0.01).tolist() == [8, 1, 1]
    assert quotas(np.ones(5), 3).tolist() == [1, 1, 1, 0, 0]
    assert quotas(np.array([0.7, 0.3]), 1).tolist() == [1, 0]
    w = np.random.default_rng(0).random(7)
    q = quotas(w, 23)
    assert q.sum() == 23 and (q[w / w.sum() >= 0.05] >= 1).all()
    assert (np.abs(q - 23 * w / w.sum()) < 1.0 + 1e-9).all()


@pytest.mark.parametrize("kwargs, words", [
    ({"diversity": 1.5}, "diversity"),
    ({"candidates_per_interest": 3}, "below k"),
    ({"exclude_mask": np.zeros(5, bool)}, "shape (600,)"),
])
def test_bad_options_are_refused(three_topics, kwargs, words):
    index, _, _, v = three_topics
    with pytest.raises(ValueError) as info:
        compose(v, [1, 1, 1], index, 10, **kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize("weights, words", [([1, -1, 1], "non-negative"),
                                            ([0, 0, 0], "not all zero"),
                                            ([1, 1], "3 interest vectors but 2 weights")])
def test_bad_weights_are_refused(three_topics, weights, words):
    index, _, _, v = three_topics
    with pytest.raises(ValueError) as info:
        compose(v, weights, index, 10)
    assert words in str(info.value)


def test_intra_list_diversity_by_hand():
    x = np.array([[1, 0], [0, 1], [1, 1], [2, 0]], dtype=np.float32)
    assert intra_list_diversity(x, [0, 1]) == pytest.approx(1.0)
    assert intra_list_diversity(x, [0, 3]) == pytest.approx(0.0)
    # pairs (0,1): 1, (0,2): 1 - 1/sqrt2, (1,2): 1 - 1/sqrt2
    assert intra_list_diversity(x, [0, 1, 2]) == pytest.approx((3 - np.sqrt(2)) / 3)
    assert intra_list_diversity(x, [2]) == 0.0


def test_interest_coverage_by_hand():
    def listed(tags, weights):
        n = len(tags)
        return ComposedList(np.arange(n), np.zeros(n, np.float32), np.array(tags),
                            np.zeros(n, np.float32), np.zeros(len(weights), np.int64),
                            np.array(weights, float))

    even = interest_coverage(listed([0, 1, 0, 1], [0.5, 0.5]))
    assert (even.served, even.n_interests, even.entropy, even.evenness) == (2, 2, 1.0, 1.0)
    one = interest_coverage(listed([2, 2, 2], [0.2, 0.3, 0.5]))
    assert (one.served, one.entropy, one.evenness) == (1, 0.0, 0.0)
    skew = interest_coverage(listed([0, 0, 0, 1], [0.5, 0.5, 0.0]))
    assert skew.n_interests == 2
    assert skew.entropy == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)))
