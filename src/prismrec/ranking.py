"""Ranking primitives every step shares: one top-k with one tie rule, one NDCG.

**Top-k.** ``topk(scores, k)`` returns each row's k best scores, best first; equal scores go
to the lower item index, on every run and on every path (serving, evaluation, retrieval,
text search). It is exact and, over a large catalogue, faster than one ``torch.topk`` pass
for small k: the k best scores of a row all lie in the k blocks (of ``block`` consecutive
items) with the highest block maxima -- a score outside those blocks has at least k
larger-or-equal scores, the maxima -- so one vectorised max per block, a top-k over the block
maxima and a top-k over k·block candidates find them. A row with ties at the cut is redone
exactly (everything above the cut, then the lowest-index ties), and the k are ordered by
(score desc, index asc).

**NDCG.** ``ndcg(rows, ranks, n_targets, k)``: per case, the sum over its targets ranked
within k of 1 / log2(rank + 1), divided by the ideal DCG of min(|T|, k) hits. Early stopping
(``train.validation``), the blend's selection (``recommender._blend``) and evaluation
(``eval.metrics``) all call it; each computes target ranks its own way (torch on a model's
scores, numpy on a scorer's), with the same rule: rank = 1 + the items scoring at least the
target's score (ties count against the model), a filtered target is a miss.
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK = 128


def topk(scores: torch.Tensor, k: int, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of each row's k largest scores, best first; scores (B, N).

    Equal scores: the lower index first. NaN scores are not supported (callers reject them).
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, N), got shape {tuple(scores.shape)}")
    b, n = scores.shape
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if k == 0 or b == 0:
        return scores[:, :k].clone(), torch.zeros((b, k), dtype=torch.int64)
    n_blocks = -(-n // block)
    if n_blocks <= 4 * k:  # too few blocks to skip any: the plain pass is as fast
        values, indices = torch.topk(scores, k, dim=1, sorted=True)
        tied = (scores >= values[:, -1:]).sum(1) > k  # (B,) more candidates than places
    else:
        pad = n_blocks * block - n
        padded = torch.nn.functional.pad(scores, (0, pad), value=-torch.inf) if pad else scores
        blocks = padded.reshape(b, n_blocks, block)
        maxima = blocks.amax(dim=2)  # (B, n_blocks)
        best_blocks = torch.topk(maxima, k, dim=1).indices  # (B, k)
        cand = blocks.gather(1, best_blocks[:, :, None].expand(b, k, block)).reshape(b, -1)
        values, pos = torch.topk(cand, k, dim=1, sorted=True)  # (B, k)
        indices = best_blocks.gather(1, pos // block) * block + pos % block
        cut = values[:, -1:]
        # a tie at the cut: more candidates at or above it, or another block reaching it
        tied = ((cand >= cut).sum(1) > k) | ((maxima >= cut).sum(1) > k)
    for r in torch.nonzero(tied).flatten().tolist():
        row, t = scores[r], values[r, -1]
        above = torch.nonzero(row > t).flatten()
        at = torch.nonzero(row == t).flatten()[: k - len(above)]
        indices[r] = torch.cat([above, at])
        values[r] = row[indices[r]]
    # order within the k: score desc, then index asc (a stable sort on sorted indices)
    indices, perm = torch.sort(indices, dim=1)
    values = values.gather(1, perm)
    values, order = torch.sort(values, dim=1, descending=True, stable=True)
    return values, indices.gather(1, order)


def topk_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``topk`` for a numpy (B, N) array: (values, int64 indices) as numpy."""
    values, indices = topk(torch.from_numpy(np.ascontiguousarray(scores)), k)
    return values.numpy(), indices.numpy()


def discounts(k: int) -> np.ndarray:
    """(k,) float64: the gain 1 / log2(rank + 1) of a hit at rank 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg(rows: np.ndarray, ranks: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per case (len(n_targets),) float64.

    ``rows[e]`` is the case of distinct target e and ``ranks[e]`` its 1-based rank (any
    number; > k, inf or NaN-free misses score 0); ``n_targets`` the distinct targets per case
    (at least 1 for a case to score above 0; a case with none scores 0).
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    n_targets = np.asarray(n_targets, dtype=np.int64)
    disc = discounts(k)
    hit = ranks <= k
    gain = np.zeros(len(ranks))
    gain[hit] = disc[ranks[hit].astype(np.int64) - 1]
    dcg = np.bincount(rows, weights=gain, minlength=len(n_targets))
    ideal = np.cumsum(disc)[np.clip(n_targets, 1, k) - 1]
    return np.where(n_targets > 0, dcg / ideal, 0.0)
