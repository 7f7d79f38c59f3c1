"""EASE: a closed-form item-item linear autoencoder (Steck, WWW 2019).

    min_B ||X - X B||^2 + lam ||B||^2  subject to diag(B) = 0
    P = (X^T X + lam I)^-1,  B_ij = -P_ij / P_jj (i != j),  B_jj = 0

One N x N inverse (Cholesky, float64) per fit: seconds for a few thousand items, but O(N^2)
memory and O(N^3) time, so it is a baseline for catalogues up to tens of thousands of items.
A user's scores are their binary history bag times B.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.linalg import get_lapack_funcs

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.errors import DataError
from prismrec.eval.baselines._matrix import binary_matrix, check_fitted, check_items
from prismrec.eval.evaluate import evaluate, parse_cutoff

log = logging.getLogger(__name__)

MAX_ITEMS = 40_000  # the dense N x N float64 Gram matrix alone is 12.8 GB at this size

DEFAULT_LAMBDAS = (1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """B from the (N, N) Gram matrix X^T X; ``gram`` is not modified."""
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += lam
    potrf, potri = get_lapack_funcs(("potrf", "potri"), (g,))
    c, info = potrf(g, lower=False, overwrite_a=True)
    if info != 0:
        raise DataError(f"X^T X + {lam} I is not positive definite; use a larger lam (> 0)")
    p, info = potri(c, lower=False, overwrite_c=True)  # upper triangle of P
    if info != 0:
        raise DataError(f"could not invert X^T X + {lam} I; use a larger lam")
    p = np.triu(p) + np.triu(p, 1).T  # (N, N) symmetric P
    b = p / -np.diag(p)[None, :]  # B_ij = -P_ij / P_jj
    b[np.diag_indices_from(b)] = 0.0
    return b


class EASE:
    """Embarrassingly shallow autoencoder; ``lam`` is the ridge penalty (tune it on validation)."""

    def __init__(self, lam: float = 200.0) -> None:
        self.lam = lam

    def fit(self, train: Sequences, n_items: int) -> EASE:
        return self._fit_gram(gram_matrix(train, n_items), n_items)

    def _fit_gram(self, gram: np.ndarray, n_items: int) -> EASE:
        if not self.lam > 0:
            raise ValueError(f"lam must be positive, got {self.lam}")
        self.weights_ = ease_weights(gram, self.lam).astype(np.float32)  # (N, N)
        self.n_items_ = n_items
        return self

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        """(B, N): binary history bag @ B."""
        check_fitted(self, "weights_")
        check_items(histories, self.n_items_, "history")
        h = binary_matrix(histories, self.n_items_, dtype=np.float32)  # (B, N)
        return np.asarray(h @ self.weights_)  # (B, N)


def gram_matrix(train: Sequences, n_items: int) -> np.ndarray:
    """Dense X^T X (item co-occurrence counts) of the binary training matrix, (N, N) float64."""
    if n_items > MAX_ITEMS:
        raise ValueError(
            f"EASE needs an N x N dense matrix; {n_items} items is more than {MAX_ITEMS}. "
            "Use ItemKNN for catalogues this large."
        )
    check_items(train, n_items, "training")
    x = binary_matrix(train, n_items)  # (U, N)
    return (x.T @ x).toarray()  # (N, N)


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
