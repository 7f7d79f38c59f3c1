"""ItemKNN: items bought by the same users are similar; score by the user's recent items.

Cosine similarity between item columns of the binary user-item matrix, keeping each item's
``neighbours`` most similar items (Deshpande & Karypis 2004). Scoring sums, over the last
``window`` history items, their similarity to each candidate, weighted decay**age so the most
recent items count most. Sparse throughout: fit and score cost grow with co-occurrences, not
with the square of the catalogue.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from prismrec.data.sequences import Sequences
from prismrec.eval.baselines._matrix import (
    binary_matrix,
    check_fitted,
    check_items,
    recency_matrix,
)


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties: smaller column index first)."""
    m = m.tocoo()
    order = np.lexsort((m.col, -m.data, m.row))
    rows, cols, vals = m.row[order], m.col[order], m.data[order]
    starts = np.searchsorted(rows, rows, side="left")  # rows are sorted
    keep = np.arange(len(rows)) - starts < k
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=m.shape)


class ItemKNN:
    """Item-to-item cosine neighbourhood model.

    ``shrink`` damps similarities supported by few co-occurrences: sim = c_ij / (|i||j| + shrink).
    ``window=None`` uses the whole history; ``decay=1.0`` weights all history items equally.
    """

    def __init__(self, neighbours: int = 100, window: int | None = None, decay: float = 1.0,
                 shrink: float = 10.0) -> None:  # shrink 10: +0.009 ndcg@10 on Scientific valid
        self.neighbours = neighbours
        self.window = window
        self.decay = decay
        self.shrink = shrink

    def _check_params(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be None or at least 1, got {self.window}")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be non-negative, got {self.shrink}")

    def fit(self, train: Sequences, n_items: int) -> ItemKNN:
        self._check_params()
        check_items(train, n_items, "training")
        x = binary_matrix(train, n_items)  # (U, N)
        co = (x.T @ x).tocoo()  # (N, N) co-occurrence counts
        norm = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # (N,) sqrt of each item's users
        off = co.row != co.col
        sim = co.data[off] / (norm[co.row[off]] * norm[co.col[off]] + self.shrink)
        sim = sp.coo_matrix((sim, (co.row[off], co.col[off])), shape=co.shape)
        self.similarity_ = _top_per_row(sim, self.neighbours).astype(np.float32)  # (N, N)
        self.n_items_ = n_items
        return self

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        """(B, N): sum of the similarities of each candidate to the recent history items."""
        check_fitted(self, "similarity_")
        check_items(histories, self.n_items_, "history")
        h = recency_matrix(histories, self.n_items_, self.window, self.decay)  # (B, N)
        return np.asarray((h.astype(np.float32) @ self.similarity_).toarray())  # (B, N)
