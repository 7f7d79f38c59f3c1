"""prismrec.ranking: the one top-k and its tie rule (score desc, then lower index), the one
NDCG; every copy that used to exist now calls these, so the paths agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prismrec.eval.metrics import top_k
from prismrec.ranking import discounts, ndcg, topk, topk_numpy
from prismrec.text import cosine_topk


def reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain full sort: score desc, then index asc."""
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores),
                       axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 4), n=st.integers(1, 3000), k=st.integers(0, 40), levels=st.integers(1, 6),
       seed=st.integers(0, 10_000), block=st.sampled_from([4, 16, 128]))
def test_topk_equals_a_full_sort_with_ties_to_the_lower_index(b, n, k, levels, seed, block):
    rng = np.random.default_rng(seed)
    k = min(k, n)
    scores = rng.integers(0, levels, size=(b, n)).astype(np.float32)  # many ties
    scores[rng.random((b, n)) < 0.2] = -np.inf
    values, indices = topk(torch.from_numpy(scores), k, block=block)
    want_v, want_i = reference(scores, k)
    np.testing.assert_array_equal(values.numpy(), want_v)
    np.testing.assert_array_equal(indices.numpy(), want_i)


def test_ties_across_blocks_go_to_the_lower_index():
    scores = torch.zeros(1, 100_000)
    scores[0, [99_000, 5, 60_000, 70]] = 1.0  # four equal best items in far-apart blocks
    _, indices = topk(scores, 3)
    assert indices.tolist() == [[5, 70, 60_000]]


def test_every_path_applies_the_same_rule():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(3, 500)).astype(np.float32)
    want_v, want_i = reference(scores, 7)
    items, valid = top_k(scores, 7)  # evaluation
    np.testing.assert_array_equal(items, want_i)
    assert valid.all()
    v, i = topk_numpy(scores, 7)
    np.testing.assert_array_equal(i, want_i)
    # text search: equal vectors tie on cosine, the lower index first
    vecs = np.repeat(np.eye(2, dtype=np.float32), 3, axis=0)  # items 0-2 = e0, 3-5 = e1
    idx, _ = cosine_topk(np.array([[1.0, 0.0]], dtype=np.float32), vecs, 4)
    assert idx.tolist() == [[0, 1, 2, 3]]


def test_ndcg_by_hand():
    # case 0: one target at rank 1 -> 1; case 1: two targets at ranks 2 and 5 (k=3) ->
    # (1/log2 3) / (1 + 1/log2 3); case 2: its target filtered (inf) -> 0
    rows = np.array([0, 1, 1, 2])
    ranks = np.array([1, 2, 5, np.inf])
    got = ndcg(rows, ranks, np.array([1, 2, 1]), 3)
    d = discounts(3)
    np.testing.assert_allclose(got, [1.0, d[1] / (d[0] + d[1]), 0.0])


@pytest.mark.parametrize("k", [1, 5])
def test_a_perfect_ranking_scores_one(k):
    n_t = np.array([3, 1, 7])
    rows = np.repeat(np.arange(3), n_t)
    ranks = np.concatenate([np.arange(1, m + 1) for m in n_t])
    np.testing.assert_allclose(ndcg(rows, ranks, n_t, k), 1.0)
