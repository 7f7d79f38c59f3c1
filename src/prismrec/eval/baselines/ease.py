"""EASE: a closed-form item-item linear autoencoder (Steck, WWW 2019).

    min_B ||X - X B||^2 + lam ||B||^2  subject to diag(B) = 0
    P = (X^T X + lam I)^-1,  B_ij = -P_ij / P_jj (i != j),  B_jj = 0

The closed form lives in ``prismrec.models.item_item`` (the Recommender's blend uses it too);
this is its baseline wrapper. One N x N inverse (Cholesky, float64, in place) per fit:
seconds for a few thousand items, minutes at 20,000 (158 CPU s measured), O(N^2) memory and
O(N^3) time, so it is a baseline for catalogues up to tens of thousands of items. A fit whose
estimated peak memory exceeds what is available is refused before it starts. A user's scores
are their history bag times B: binary by default, or with ``decay < 1`` the t-th of L items
weighted ``decay ** (L - 1 - t)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.eval.baselines._matrix import check_fitted, check_items
from prismrec.eval.evaluate import evaluate, parse_cutoff
from prismrec.models.item_item import (
    MAX_ITEMS,
    check_memory,
    check_size,
    ease_weights,
    fit_bytes,
    gram_matrix,
    history_bag,
)

log = logging.getLogger(__name__)

DEFAULT_LAMBDAS = (1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


class EASE:
    """Embarrassingly shallow autoencoder; ``lam`` is the ridge penalty (tune it on validation).

    ``decay`` (in (0, 1]) weighs older history items less when scoring; 1.0 is plain EASE.
    """

    def __init__(self, lam: float = 200.0, decay: float = 1.0) -> None:
        self.lam = lam
        self.decay = decay

    def fit(self, train: Sequences, n_items: int) -> EASE:
        """Solve on ``train``; refuses (``NotEnoughMemoryError``) before starting when the
        estimated peak (``fit_bytes``, counting one more fitted model kept by a settings
        search) exceeds the memory available."""
        check_size(n_items)
        check_memory(fit_bytes(n_items), f"EASE on {n_items:,} items")
        return self._fit_gram(gram_matrix(train, n_items), n_items, overwrite=True)

    def _fit_gram(self, gram: np.ndarray, n_items: int, *, overwrite: bool = False) -> EASE:
        if not self.lam > 0:
            raise ValueError(f"lam must be positive, got {self.lam}")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        b = ease_weights(gram, self.lam, overwrite=overwrite)  # (N, N) float64
        self.weights_ = b.astype(np.float32)  # (N, N)
        del b
        self.n_items_ = n_items
        return self

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        """(B, N): history bag (binary, or recency-weighted with ``decay``) @ B."""
        check_fitted(self, "weights_")
        check_items(histories, self.n_items_, "history")
        h = history_bag(histories, self.n_items_, self.decay)  # (B, N)
        return np.asarray(h @ self.weights_)  # (B, N)


def tune_ease(train: Sequences, valid_cases: EvalCases, n_items: int,
              lambdas: Iterable[float] = DEFAULT_LAMBDAS,
              metric: str = "ndcg@10") -> tuple[float, pd.DataFrame]:
    """The lam with the best validation ``metric`` (seen items filtered), and the whole table.

    Same choice as ``select_on_validation(EASE, lambdas, ...)``, with X^T X computed once.
    Ties go to the earliest value in ``lambdas``.
    """
    lambdas = [float(v) for v in lambdas]
    if not lambdas:
        raise ValueError("lambdas is empty: give at least one lam value to try")
    k = parse_cutoff(metric)
    check_size(n_items)
    check_memory(fit_bytes(n_items, keep_gram=True), f"EASE on {n_items:,} items")
    gram = gram_matrix(train, n_items)
    rows = []
    for lam in lambdas:
        model = EASE(lam)._fit_gram(gram, n_items)
        report = evaluate(model, valid_cases, ks=(k,), n_bootstrap=0)
        if metric not in report.metrics:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(report.metrics)}")
        rows.append({"lam": lam, metric: report.metrics[metric]})
        log.info("EASE lam=%g: validation %s=%.5f", lam, metric, rows[-1][metric])
    table = pd.DataFrame(rows)
    best = float(table["lam"].iloc[int(np.argmax(table[metric].to_numpy()))])
    return best, table


__all__ = ["DEFAULT_LAMBDAS", "EASE", "MAX_ITEMS", "ease_weights", "gram_matrix", "tune_ease"]
