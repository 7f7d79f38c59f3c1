"""EASE at catalogue sizes where the old solver crashed, and its memory refusal."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from prismrec.data.sequences import Sequences
from prismrec.eval.baselines import EASE
from prismrec.models.item_item import (
    NotEnoughMemoryError,
    available_bytes,
    blend_bytes,
    check_memory,
    fit_bytes,
    gram_matrix,
)

N_LARGE = 20_000


def paired_histories(n_items: int, n_users: int, seed: int = 0) -> Sequences:
    """Each user buys a few random pairs (2i, 2i+1): item 2i's best partner is 2i+1."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_users):
        pairs = rng.choice(n_items // 2, size=3, replace=False)
        rows.append(np.stack([2 * pairs, 2 * pairs + 1], axis=1).ravel())
    return Sequences.from_lists(rows)


@pytest.mark.slow
def test_ease_fits_20000_items_within_its_memory_estimate():
    check_large(N_LARGE)


def check_large(n_items: int) -> None:
    torch.set_num_threads(2)
    train = paired_histories(n_items, 2 * n_items)
    need = fit_bytes(n_items, kept_models=0)
    if need > available_bytes():
        pytest.skip(f"EASE on {n_items} items needs {need / 2**30:.1f} GiB; this machine has "
                    f"{available_bytes() / 2**30:.1f} GiB available")
    tracemalloc.start()
    model = EASE(lam=50.0).fit(train, n_items)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= need  # the estimate bounds the real peak (numpy allocations)
    w = model.weights_
    assert w.shape == (n_items, n_items) and w.dtype == np.float32
    assert np.all(np.diag(w) == 0.0)
    # the closed form: off the diagonal, (G + lam I) B equals G, checked on sampled columns
    cols = np.array([0, 1, 777, n_items // 2 + 5, n_items - 1])
    gram = gram_matrix(train, n_items)
    lhs = gram @ w[:, cols].astype(np.float64) + 50.0 * w[:, cols]
    off = np.ones_like(lhs, dtype=bool)
    off[cols, np.arange(len(cols))] = False
    np.testing.assert_allclose(lhs[off], gram[:, cols][off], atol=2e-3)
    del gram
    # and it recommends the planted partner
    hist = Sequences.from_lists([[2 * i] for i in range(0, 50)])
    top = model.score(np.arange(50), hist).argmax(axis=1)
    assert (top == 2 * np.arange(50) + 1).mean() > 0.95


def test_a_fit_that_would_not_fit_in_memory_is_refused_with_the_numbers():
    need = blend_bytes(30_000, text=True)
    with pytest.raises(NotEnoughMemoryError, match=r"needs about 34\.\d GiB .* 4\.0 GiB is "
                                                   r"available"):
        check_memory(need, "the EASE blend on 30,000 items", available=4 * 2**30)
    check_memory(fit_bytes(1000), "EASE on 1,000 items", available=4 * 2**30)  # fits


def test_estimates_grow_with_what_is_kept():
    n = 10_000
    assert fit_bytes(n) < fit_bytes(n, keep_gram=True) <= blend_bytes(n, text=False) < (
        blend_bytes(n, text=True))
    assert fit_bytes(n, kept_models=0) == 12 * n * n + fit_bytes(0)
