"""Sequences -> sparse user-item matrices, shared by the neighbourhood baselines."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from prismrec.data.sequences import Sequences
from prismrec.errors import DataError


def check_items(seqs: Sequences, n_items: int, what: str) -> None:
    """Raise a DataError naming ``what`` if any item is not an index in [0, n_items)."""
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    if seqs.n_events and (seqs.items.min() < 0 or seqs.items.max() >= n_items):
        raise DataError(
            f"{what} items must be indices in [0, {n_items}); got "
            f"[{seqs.items.min()}, {seqs.items.max()}]: pass the catalogue size as n_items"
        )


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
    age = np.repeat(seqs.lengths, seqs.lengths) - 1 - seqs.positions()  # (E,)
    keep = age < window if window is not None else np.ones(seqs.n_events, dtype=bool)
    rows, items, age = seqs.row_ids()[keep], seqs.items[keep], age[keep]
    order = np.lexsort((age, items, rows))  # per (row, item): youngest first
    rows, items, age = rows[order], items[order], age[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    w = np.power(float(decay), age[first].astype(np.float64))
    return sp.csr_matrix((w, (rows[first], items[first])), shape=(len(seqs), n_items))


def check_fitted(model: object, attr: str) -> None:
    """Raise a clear error when score() is called before fit()."""
    if not hasattr(model, attr):
        raise ValueError(f"{type(model).__name__} is not fitted yet: call fit(train, n_items)")
