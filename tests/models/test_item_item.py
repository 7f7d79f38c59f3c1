"""Item-item (EASE) closed form, the recency-weighted history bag, and the score blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prismrec.data.sequences import Sequences
from prismrec.eval.baselines import EASE
from prismrec.models.item_item import (
    MAX_ITEMS,
    ItemItem,
    blend,
    ease_weights,
    gram_matrix,
    history_bag,
    standardize,
)

torch.set_num_threads(1)

ROWS = [[0, 1, 2], [1, 2, 3], [0, 2, 4], [3, 4], [0, 1], [2, 3, 4, 1]]
N = 5


def binary(rows: list[list[int]], n: int) -> np.ndarray:
    x = np.zeros((len(rows), n))
    for r, items in enumerate(rows):
        x[r, items] = 1.0
    return x


def direct_ease(x: np.ndarray, lam: float) -> np.ndarray:
    """Column by column: ridge-regress item j on every other item (b_jj = 0 by construction)."""
    n = x.shape[1]
    b = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        a = x[:, others]
        b[others, j] = np.linalg.solve(a.T @ a + lam * np.eye(n - 1), a.T @ x[:, j])
    return b


def test_closed_form_matches_a_direct_ridge_solve_per_item():
    x = binary(ROWS, N)
    got = ease_weights(gram_matrix(Sequences.from_lists(ROWS), N), 2.0)
    np.testing.assert_allclose(got, direct_ease(x, 2.0), atol=1e-10)
    assert np.all(np.diag(got) == 0.0)


def test_item_item_fit_keeps_the_closed_form_as_a_float32_buffer():
    model = ItemItem(decay=1.0).fit(Sequences.from_lists(ROWS), N, lam=2.0)
    assert model.weights.dtype == torch.float32 and model.n_items == N and model.lam == 2.0
    assert "weights" in dict(model.named_buffers())
    np.testing.assert_allclose(model.weights.numpy(), direct_ease(binary(ROWS, N), 2.0),
                               atol=1e-6)


def test_the_bag_weighs_the_t_th_of_l_items_by_decay_to_the_l_minus_1_minus_t():
    bag = history_bag(Sequences.from_lists([[3, 0, 4]]), N, decay=0.5).toarray()
    np.testing.assert_allclose(bag, [[0.5, 0.0, 0.0, 0.25, 1.0]])


def test_a_repeated_item_keeps_the_weight_of_its_latest_occurrence():
    bag = history_bag(Sequences.from_lists([[1, 2, 1, 3]]), N, decay=0.5).toarray()
    np.testing.assert_allclose(bag, [[0.0, 0.5, 0.25, 1.0, 0.0]])


def test_decay_changes_scores_as_the_weighted_sum_of_weight_rows():
    model = ItemItem(decay=0.8).fit(Sequences.from_lists(ROWS), N, lam=1.0)
    w = model.weights.numpy()
    history = Sequences.from_lists([[0, 3, 1], [4]])
    got = model.scores(history).numpy()
    np.testing.assert_allclose(got[0], 0.64 * w[0] + 0.8 * w[3] + 1.0 * w[1], rtol=1e-6)
    np.testing.assert_allclose(got[1], w[4], rtol=1e-6)
    plain = ItemItem(decay=1.0).fit(Sequences.from_lists(ROWS), N, lam=1.0)
    np.testing.assert_allclose(plain.scores(history).numpy()[0], w[0] + w[3] + w[1], rtol=1e-6)
    assert not np.allclose(got[0], plain.scores(history).numpy()[0])


def test_ease_baseline_uses_the_same_weights_and_bag():
    train = Sequences.from_lists(ROWS)
    history = Sequences.from_lists([[0, 3, 1], [2, 2]])
    for decay in (1.0, 0.6):
        ease = EASE(lam=3.0, decay=decay).fit(train, N)
        model = ItemItem(decay=decay).fit(train, N, lam=3.0)
        np.testing.assert_allclose(ease.score(np.arange(2), history),
                                   model.scores(history).numpy(), rtol=1e-6)
    default = EASE(lam=3.0).fit(train, N).score(np.arange(2), history)
    np.testing.assert_allclose(default, binary([[0, 3, 1], [2]], N) @ ease.weights_,
                               rtol=1e-6)


def test_resize_adds_zero_rows_and_columns():
    model = ItemItem().fit(Sequences.from_lists(ROWS), N, lam=1.0)
    before = model.weights.clone()
    model.resize(N + 2)
    assert model.weights.shape == (N + 2, N + 2)
    assert torch.equal(model.weights[:N, :N], before)
    assert not model.weights[N:].any() and not model.weights[:, N:].any()
    scores = model.scores(Sequences.from_lists([[0, 6]])).numpy()[0]  # new item 6 adds nothing
    np.testing.assert_allclose(scores[:N], before[0].numpy())
    assert np.all(scores[N:] == 0.0)


def test_catalogues_above_max_items_are_refused_before_any_allocation():
    with pytest.raises(ValueError, match=str(MAX_ITEMS)):
        gram_matrix(Sequences.from_lists([[0]]), MAX_ITEMS + 1)
    with pytest.raises(ValueError, match="N x N"):
        ItemItem(MAX_ITEMS + 1)


def test_bad_decay_and_lam_are_rejected():
    with pytest.raises(ValueError, match="decay"):
        ItemItem(decay=0.0)
    with pytest.raises(ValueError, match="lam"):
        ItemItem().fit(Sequences.from_lists(ROWS), N, lam=0.0)


def test_standardize_gives_zero_mean_unit_scale_rows_and_zeros_for_constant_rows():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    z = standardize(x)
    np.testing.assert_allclose(z[0].mean().item(), 0.0, atol=1e-6)
    np.testing.assert_allclose(z[0].std(unbiased=False).item(), 1.0, atol=1e-6)
    assert torch.equal(z[1], torch.zeros(4))


def test_blend_mixes_standardized_parts_and_its_ends_keep_each_ranking():
    seq = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    other = torch.tensor([[0.0, 10.0, 30.0, 20.0]])
    mixed = blend(seq, other, 0.25)
    torch.testing.assert_close(mixed, 0.75 * standardize(seq) + 0.25 * standardize(other))
    assert blend(seq, other, 0.0).argsort().tolist() == seq.argsort().tolist()
    assert blend(seq, other, 1.0).argsort().tolist() == other.argsort().tolist()
