"""Sequences -> sparse user-item matrices, shared by the neighbourhood baselines."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from prismrec.data.sequences import Sequences
from prismrec.models.item_item import check_items, history_bag

__all__ = ["binary_matrix", "check_fitted", "check_items", "recency_matrix"]


def binary_matrix(seqs: Sequences, n_items: int, dtype=np.float64) -> sp.csr_matrix:
    """(rows, n_items) with 1 where the row holds the item (repeats count once)."""
    m = sp.csr_matrix(
        (np.ones(seqs.n_events, dtype=dtype), (seqs.row_ids(), seqs.items)),
        shape=(len(seqs), n_items),
    )
    m.sum_duplicates()
    m.data[:] = 1
    return m


def recency_matrix(seqs: Sequences, n_items: int, window: int | None,
                   decay: float) -> sp.csr_matrix:
    """Last ``window`` items of each row, weighted decay**age (age 0 = most recent event).

    An item that occurs more than once keeps the weight of its latest occurrence.
    """
    recent = seqs if window is None else seqs.last(window)
    return history_bag(recent, n_items, decay).astype(np.float64)


def check_fitted(model: object, attr: str) -> None:
    """Raise a clear error when score() is called before fit()."""
    if not hasattr(model, attr):
        raise ValueError(f"{type(model).__name__} is not fitted yet: call fit(train, n_items)")
