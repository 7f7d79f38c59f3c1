"""MostPopular: every user gets the items with the most training interactions."""

from __future__ import annotations

import numpy as np

from prismrec.data.sequences import Sequences
from prismrec.eval.baselines._matrix import check_fitted, check_items


class MostPopular:
    """Scores each item by its number of training interactions: the floor any model must beat."""

    def fit(self, train: Sequences, n_items: int) -> MostPopular:
        check_items(train, n_items, "training")
        self.counts_ = np.bincount(train.items, minlength=n_items).astype(np.float32)  # (N,)
        return self

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        """(B, N): the same popularity row for everyone; the history is not used."""
        check_fitted(self, "counts_")
        return np.tile(self.counts_, (len(users), 1))
