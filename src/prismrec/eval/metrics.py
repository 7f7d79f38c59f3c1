"""Full-ranking metrics on score matrices: conservative target ranks, top-K lists, bootstrap.

Every function works on one batch of cases at a time, so memory stays at one (B, N) matrix.

Definitions (binary relevance, targets de-duplicated per case, T = a case's target set):

- rank of a target t = 1 + #non-targets scoring >= s_t + #targets ahead of t, where targets
  are ordered by score (ties: item index). Ties with non-targets therefore always count
  against the model (conservative), targets tied with each other take consecutive places,
  and the result is the same every run. A target scoring -inf (filtered) is a miss.
- hr@K = 1 if any target ranks <= K.
- recall@K = hits / |T| (not hits / min(|T|, K): a case with more targets than K cannot reach 1).
- ndcg@K = sum over hits of 1 / log2(rank + 1), divided by the ideal DCG of min(|T|, K) hits.
- mrr@K = 1 / rank of the best-ranked target if it is within K, else 0.
- coverage@K = fraction of the catalogue appearing in any top-K list.
- novelty@K = mean over a case's top-K list of -log2(count_i / sum(count)), counts from
  training; an item never seen in training counts as seen once, so novelty stays finite.

With one target per case hr@K == recall@K.
"""

from __future__ import annotations

import numpy as np

from prismrec.data.sequences import Sequences
from prismrec.errors import DataError
from prismrec.ranking import ndcg, topk_numpy


def popularity(train: Sequences, n_items: int) -> np.ndarray:
    """Interaction count per item in ``train``, (n_items,) int64 (the novelty reference)."""
    if train.n_events and (train.items.min() < 0 or train.items.max() >= n_items):
        raise DataError(f"training items must be indices in [0, {n_items}); got values outside")
    return np.bincount(train.items, minlength=n_items).astype(np.int64)


def self_information(item_popularity: np.ndarray) -> np.ndarray:
    """-log2 of each item's share of all training interactions, (N,) float64."""
    counts = np.asarray(item_popularity, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise DataError("item_popularity must be a 1-d array of non-negative counts, not all zero")
    return -np.log2(np.maximum(counts, 1.0) / counts.sum())


def unique_targets(targets: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) of every distinct target per row, sorted by row then item."""
    rows, items = targets.row_ids(), targets.items
    order = np.lexsort((items, rows))
    rows, items = rows[order], items[order]
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    return rows[keep], items[keep]


def target_ranks(scores: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Conservative 1-based rank of each target (row, item) in its score row; inf for -inf.

    ``rows``/``items`` are distinct targets (see ``unique_targets``). Deterministic: no
    randomness, ties with non-targets are placed before the target.
    """
    n_rows = scores.shape[0]
    s = scores[rows, items]  # (E,) target scores
    # count of all items scoring >= each target's score, in chunks of at most n_rows targets
    ge = np.empty(len(rows), dtype=np.int64)
    single = len(rows) == n_rows and np.array_equal(rows, np.arange(n_rows))
    for start in range(0, len(rows), max(n_rows, 1)):
        stop = min(start + n_rows, len(rows))
        sub = scores if single else scores[rows[start:stop]]  # (b, N)
        ge[start:stop] = (sub >= s[start:stop, None]).sum(axis=1)
    # order the targets of each row by score desc, then item asc: position p within the row
    order = np.lexsort((items, -s, rows))
    r_sorted, s_sorted = rows[order], s[order]
    n = len(order)
    new_row = np.ones(n, dtype=bool)
    new_row[1:] = r_sorted[1:] != r_sorted[:-1]
    idx = np.arange(n)
    row_start = np.maximum.accumulate(np.where(new_row, idx, 0))
    p = idx - row_start  # targets ahead in the row
    # number of targets in the row scoring >= s (p of the last member of the tie run, + 1)
    new_run = new_row.copy()
    new_run[1:] |= s_sorted[1:] != s_sorted[:-1]
    run_id = np.cumsum(new_run) - 1
    run_end = np.append(np.flatnonzero(new_run)[1:], n) - 1  # last index of each run
    tgt_ge = run_end[run_id] - row_start + 1
    rank_sorted = 1 + (ge[order] - tgt_ge) + p
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = rank_sorted
    ranks[np.isneginf(s)] = np.inf
    return ranks


def ranking_metrics(rows: np.ndarray, ranks: np.ndarray, n_rows: int,
                    ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-case hr/recall/ndcg/mrr at each K from target ranks; also "rank" (best rank)."""
    n_t = np.bincount(rows, minlength=n_rows).astype(np.float64)
    if (n_t == 0).any():
        raise DataError("every evaluation case needs at least one target item")
    best = np.full(n_rows, np.inf)
    np.minimum.at(best, rows, ranks)
    out: dict[str, np.ndarray] = {"rank": best}
    for k in ks:
        hit = ranks <= k
        hits = np.bincount(rows, weights=hit, minlength=n_rows)
        out[f"ndcg@{k}"] = ndcg(rows, ranks, n_t.astype(np.int64), k)
        out[f"hr@{k}"] = (hits > 0).astype(np.float64)
        out[f"recall@{k}"] = hits / n_t
        out[f"mrr@{k}"] = np.where(best <= k, 1.0 / best, 0.0)
    return out


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best items per row, (B, k), by score desc then item index asc
    (``prismrec.ranking.topk``); and a mask of entries that are real recommendations
    (score > -inf)."""
    values, items = topk_numpy(scores, min(k, scores.shape[1]))
    return items, values > -np.inf


def bootstrap_ci(values: np.ndarray, n_bootstrap: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean of each column of ``values`` (n, m).

    Resamples cases with replacement; NaN entries are ignored in each mean. Same seed, same
    interval.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n, m = values.shape
    if n == 0 or n_bootstrap <= 0:
        return np.full(m, np.nan), np.full(m, np.nan)
    rng = np.random.default_rng(seed)
    finite = ~np.isnan(values)
    filled = np.where(finite, values, 0.0)
    means = np.empty((n_bootstrap, m))
    chunk = max(1, 2_000_000 // n)  # bound the (chunk, n) resampling matrices
    for start in range(0, n_bootstrap, chunk):
        c = min(chunk, n_bootstrap - start)
        idx = rng.integers(0, n, size=(c, n))  # (c, n) resampled case indices
        flat = (idx + n * np.arange(c)[:, None]).ravel()
        counts = np.bincount(flat, minlength=c * n).reshape(c, n).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[start : start + c] = (counts @ filled) / (counts @ finite)  # (c, m)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.full(m, np.nan), np.full(m, np.nan)
    ok = ~np.isnan(means).all(axis=0)
    if ok.any():
        lo[ok] = np.nanquantile(means[:, ok], alpha, axis=0)
        hi[ok] = np.nanquantile(means[:, ok], 1.0 - alpha, axis=0)
    return lo, hi
