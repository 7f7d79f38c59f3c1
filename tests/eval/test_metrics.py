"""Metric definitions: hand-computed cases, conservative ties, properties, top-K, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismrec.data.sequences import Sequences
from prismrec.errors import DataError
from prismrec.eval.metrics import (
    bootstrap_ci,
    popularity,
    ranking_metrics,
    self_information,
    target_ranks,
    top_k,
    unique_targets,
)


def case_metrics(scores, targets, ks=(1, 2, 3, 10)):
    """Metrics of one case: scores (N,) and a list of target items."""
    rows, items = unique_targets(Sequences.from_lists([targets]))
    ranks = target_ranks(np.asarray([scores], dtype=np.float32), rows, items)
    return {k: float(v[0]) for k, v in ranking_metrics(rows, ranks, 1, ks).items()}, ranks


def test_single_target_at_rank_three_of_five():
    m, ranks = case_metrics([0.9, 0.1, 0.5, 0.7, 0.3], [2])
    assert ranks.tolist() == [3]
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(4))
    assert m["hr@10"] == m["recall@10"] == 1.0
    assert m["mrr@10"] == pytest.approx(1 / 3)
    assert m["hr@2"] == m["ndcg@2"] == m["mrr@2"] == 0.0
    assert m["hr@3"] == 1.0


def test_two_targets_hand_computed():
    # ranking: 0, 1, 2, 3, 4; targets 1 and 3 sit at ranks 2 and 4
    m, ranks = case_metrics([5, 4, 3, 2, 1], [3, 1])
    assert sorted(ranks.tolist()) == [2, 4]
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / idcg)
    assert m["recall@3"] == 0.5  # hits / |T|
    assert m["hr@3"] == 1.0
    assert m["mrr@10"] == 0.5
    # with K=1 the ideal holds min(|T|, K) = 1 hit; the best target is at rank 2 -> 0
    assert m["ndcg@1"] == 0.0 and m["hr@1"] == 0.0


def test_repeated_targets_count_once():
    once, _ = case_metrics([5, 4, 3, 2, 1], [1, 3])
    twice, _ = case_metrics([5, 4, 3, 2, 1], [1, 3, 1, 3, 3])
    assert once == twice


def test_all_equal_scores_put_the_target_last():
    m, ranks = case_metrics(np.zeros(7), [0])
    assert ranks.tolist() == [7]
    assert m["hr@3"] == 0.0


def test_tied_targets_take_consecutive_places_after_tied_non_targets():
    _, ranks = case_metrics(np.zeros(6), [0, 5])
    assert sorted(ranks.tolist()) == [5, 6]
    # targets tied with each other at the top: ranks 1 and 2, so ndcg stays exactly 1
    m, ranks = case_metrics([1, 0, 0, 1], [0, 3])
    assert sorted(ranks.tolist()) == [1, 2]
    assert m["ndcg@10"] == pytest.approx(1.0)


def test_minus_inf_target_is_a_miss_even_at_large_k():
    m, ranks = case_metrics([-np.inf, 0.0, 1.0], [0], ks=(3, 10))
    assert ranks.tolist() == [math.inf]
    assert m["hr@10"] == m["ndcg@10"] == m["mrr@10"] == 0.0


def test_case_without_target_is_rejected():
    with pytest.raises(DataError, match="at least one target"):
        ranking_metrics(np.array([0]), np.array([1.0]), 2, (10,))


def reference_ranks(scores: np.ndarray, targets: set[int]) -> list[int]:
    """Sort by score desc, non-targets before targets within a tie; 1-based positions."""
    is_t = np.array([i in targets for i in range(len(scores))])
    order = np.lexsort((is_t, -scores))
    return sorted(int(p) + 1 for p in np.flatnonzero(is_t[order]))


cases = st.integers(2, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-3, 3), min_size=n, max_size=n),  # small range: many ties
        st.lists(st.integers(0, n - 1), min_size=1, max_size=6),
    )
)


@settings(max_examples=200, deadline=None)
@given(cases)
def test_ranks_match_a_sorted_reference(case):
    scores, targets = case
    _, ranks = case_metrics(scores, targets)
    assert sorted(ranks.tolist()) == reference_ranks(np.asarray(scores, float), set(targets))


@settings(max_examples=200, deadline=None)
@given(cases)
def test_metrics_lie_in_unit_interval_and_hr_grows_with_k(case):
    scores, targets = case
    m, _ = case_metrics(scores, targets, ks=(1, 2, 5, 10, 50))
    for name, v in m.items():
        if name != "rank":
            assert 0.0 <= v <= 1.0 + 1e-12, name
    hrs = [m[f"hr@{k}"] for k in (1, 2, 5, 10, 50)]
    assert hrs == sorted(hrs)
    recalls = [m[f"recall@{k}"] for k in (1, 2, 5, 10, 50)]
    assert recalls == sorted(recalls)


@settings(max_examples=100, deadline=None)
@given(cases)
def test_perfect_ranking_scores_one(case):
    scores, targets = case
    perfect = np.asarray(scores, float)
    perfect[list(set(targets))] = 100.0  # every target above every other item
    m, _ = case_metrics(perfect, targets, ks=(1, 10))
    n_t = len(set(targets))
    assert m["ndcg@10"] == pytest.approx(1.0)
    assert m["ndcg@1"] == pytest.approx(1.0)
    assert m["mrr@1"] == m["hr@1"] == 1.0
    assert m["recall@10"] == pytest.approx(min(n_t, 10) / n_t)


def test_top_k_breaks_ties_by_item_index():
    scores = np.array([[1, 3, 3, 2, 3]], dtype=np.float32)
    items, valid = top_k(scores, 2)
    assert items.tolist() == [[1, 2]] and valid.all()
    items, _ = top_k(scores, 4)
    assert items.tolist() == [[1, 2, 4, 3]]
    items, _ = top_k(scores, 99)  # more than the catalogue: the whole ranking
    assert items.tolist() == [[1, 2, 4, 3, 0]]


def test_top_k_marks_filtered_entries_invalid():
    items, valid = top_k(np.array([[-np.inf, 1.0, -np.inf]]), 2)
    assert items.tolist() == [[1, 0]]
    assert valid.tolist() == [[True, False]]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 45), st.integers(0, 2**31 - 1))
def test_top_k_equals_a_full_stable_sort(b, n, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(-2, 3, size=(b, n)).astype(np.float32)
    items, _ = top_k(scores, k)
    full = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, n)]
    np.testing.assert_array_equal(items, full)


def test_popularity_and_self_information_by_hand():
    train = Sequences.from_lists([[0, 0, 1], [0, 2], [0, 1]])
    counts = popularity(train, 4)
    assert counts.tolist() == [4, 2, 1, 0]
    # shares 4/7, 2/7, 1/7; the unseen item counts as seen once
    expected = -np.log2(np.array([4, 2, 1, 1]) / 7)
    np.testing.assert_allclose(self_information(counts), expected)


def test_bootstrap_interval_contains_the_mean_and_repeats_by_seed():
    rng = np.random.default_rng(3)
    values = np.column_stack([rng.random(500), (rng.random(500) < 0.2).astype(float)])
    lo, hi = bootstrap_ci(values, n_bootstrap=500, seed=7)
    mean = values.mean(axis=0)
    assert (lo < mean).all() and (mean < hi).all()
    # about 2 * 1.96 standard errors wide
    se = values.std(axis=0) / np.sqrt(len(values))
    np.testing.assert_allclose(hi - lo, 2 * 1.96 * se, rtol=0.2)
    lo2, hi2 = bootstrap_ci(values, n_bootstrap=500, seed=7)
    np.testing.assert_array_equal(lo, lo2)
    np.testing.assert_array_equal(hi, hi2)
    lo3, _ = bootstrap_ci(values, n_bootstrap=500, seed=8)
    assert not np.array_equal(lo, lo3)


def test_bootstrap_ignores_missing_values():
    values = np.array([1.0, np.nan, 3.0, np.nan, 2.0])
    lo, hi = bootstrap_ci(values, n_bootstrap=200, seed=0)
    assert 1.0 <= lo[0] <= 2.0 <= hi[0] <= 3.0
