"""Nearest items by cosine similarity: the simple exact search the text step needs."""

from __future__ import annotations

import numpy as np

from prismrec.text._protocol import DimensionMismatchError


def cosine_topk(
    query_vecs: np.ndarray, item_vecs: np.ndarray, k: int, *, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (Q, k) int64 and cosine scores (Q, k) float32 of each query's k nearest items.

    Exact, in blocks of ``block`` queries. Best first; equal scores go to the lower item
    index, the same on every run. ``k`` larger than the catalogue gives every item. Zero
    vectors score 0 against everything. For large catalogues use ``prismrec.retrieve``.
    """
    q = np.asarray(query_vecs, dtype=np.float32)
    x = np.asarray(item_vecs, dtype=np.float32)
    if q.ndim != 2 or x.ndim != 2:
        raise ValueError(f"cosine_topk wants 2-d arrays (Q, D) and (N, D), got shapes "
                         f"{q.shape} and {x.shape}")
    if q.shape[1] != x.shape[1]:
        raise DimensionMismatchError(f"query vectors are {q.shape[1]}-d but item vectors are "
                                     f"{x.shape[1]}-d")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    from prismrec.ranking import topk_numpy  # torch loads at first search, not at import
    k = min(k, x.shape[0])
    qn, xn = _unit(q), _unit(x)
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    for lo in range(0, q.shape[0], block):
        s = qn[lo: lo + block] @ xn.T  # (B, N)
        val, top = topk_numpy(s, k)  # (B, k), ties: lower index first
        idx[lo: lo + block] = top
        scores[lo: lo + block] = val
    return idx, scores


def _unit(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)  # (N, 1)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
