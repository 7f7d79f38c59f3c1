"""Composition: one recommendation list from a user's K weighted interests.

Each interest vector retrieves its own top-M candidates. An item's relevance is
``max_j w_j * s_j(item)`` over interests with positive weight: an item is scored by the
interest it serves best. (A weighted *sum* would score items against the centroid of the
interests -- the blur that a multi-interest profile exists to avoid -- and, unlike the max,
its top-k is not guaranteed to lie in the per-interest candidate lists.) With an exact index
and M >= k, the ``diversity=0`` list is exactly the catalogue's top-k by that relevance.

Diversity ``λ`` in [0, 1] decides how many of the k picks are *quota turns*: turn t (0-based)
is one when ``floor(λ (t+1)) > floor(λ t)``, so ``round-down(λ k)`` turns spread evenly
through the list, and the first pick is a relevance pick whenever λ < 1. Quotas ``q_j`` split
the k slots in proportion to the weights (largest-remainder rounding; every interest with
weight >= ``min_weight`` gets at least one slot while k allows). On a quota turn the interest
furthest behind its proportional schedule (``q_j (t+1)/k - served_j``) takes its best
remaining candidate; on a relevance turn the most relevant remaining item is taken and
credited to its best interest. λ=0 is pure relevance, λ=1 serves exactly ``q_j`` items per
interest (when the catalogue has enough eligible items). No item appears twice, ties go to
the lower index, and the same input gives the same list on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from prismrec.errors import DataError
from prismrec.retrieve.index import ItemIndex, _as_matrix, _check_k, _unit


@dataclass(frozen=True)
class ComposedList:
    """A composed list, best first; each item tagged with the interest it serves.

    ``scores`` is the relevance ``max_j w_j s_j`` (not monotone when diversity > 0);
    ``affinity`` the raw score of the item against the interest it is tagged with;
    ``quotas`` (K,) the slot targets, met exactly at diversity 1; ``weights`` (K,) the
    interest weights normalised to sum 1. Shorter than k only when fewer items are eligible.
    """

    items: np.ndarray  # (n,) int64 item indices
    scores: np.ndarray  # (n,) float32
    interest: np.ndarray  # (n,) int64 index of the interest served
    affinity: np.ndarray  # (n,) float32
    quotas: np.ndarray  # (K,) int64
    weights: np.ndarray  # (K,) float64

    def __len__(self) -> int:
        return len(self.items)


def quotas(weights: np.ndarray, k: int, *, min_weight: float = 0.05) -> np.ndarray:
    """Slots per interest (K,) int64 summing to k, proportional to ``weights``.

    Interests with normalised weight >= ``min_weight`` get one slot each first (the heaviest
    ones only, if there are more of them than k); the rest is shared by largest remainder in
    proportion to what each still lacks (``k w_j - 1``). When every ``k w_j >= 1`` this is
    plain largest-remainder rounding of ``k w``. Ties go to the lower interest index.
    """
    w = _weights(weights)
    k = _check_k(k)
    floor_ok = np.flatnonzero(w >= min_weight)
    heavy = floor_ok[np.lexsort((floor_ok, -w[floor_ok]))]  # by weight desc, index asc
    q = np.zeros(len(w), dtype=np.int64)
    q[heavy[:k]] = 1
    rest = k - int(q.sum())
    if rest == 0:
        return q
    need = np.maximum(k * w - q, 0.0)
    if need.sum() <= 0:  # everything already at its share: spread by weight
        need = w.copy()
    target = rest * need / need.sum()  # (K,) sums to rest
    base = np.floor(target).astype(np.int64)
    frac = target - base
    left = rest - int(base.sum())
    order = np.lexsort((np.arange(len(w)), -frac))
    base[order[:left]] += 1
    return q + base


def _weights(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).ravel()
    if len(w) == 0:
        raise ValueError("a profile needs at least one interest")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"interest weights must be finite, non-negative and not all zero, "
                         f"got {w.tolist()}")
    return w / w.sum()


def compose(interest_vectors: np.ndarray | torch.Tensor, interest_weights: np.ndarray,
            index: ItemIndex, k: int, *, diversity: float = 0.0,
            exclude_items: np.ndarray | None = None, exclude_mask: np.ndarray | None = None,
            candidates_per_interest: int | None = None,
            min_weight: float = 0.05, mute: np.ndarray | None = None) -> ComposedList:
    """Compose k items from K interests (K, D) with weights (K,); see the module docstring.

    ``exclude_items``: item indices never to return (the user's seen items).
    ``exclude_mask`` (N,) bool: items excluded by business rules (see ``exclusion_mask``).
    ``candidates_per_interest`` (M, default k, at least k): how deep each interest searches.
    ``mute`` (K,) bool: muted interests. Every candidate that belongs to a muted interest
    (its raw score ``s_k`` is highest there, among interests with weight) is removed and
    muted interests get no slots; the rest are scored and tagged by the unmuted interests
    (``max`` over those), so no item is tagged with a muted one. The list is then shorter
    than k only if the interests' M candidates run out (raise M).
    """
    return compose_many([(interest_vectors, interest_weights)], index, k, diversity=diversity,
                        exclude_items=None if exclude_items is None else [exclude_items],
                        exclude_mask=exclude_mask,
                        candidates_per_interest=candidates_per_interest,
                        min_weight=min_weight,
                        mute=None if mute is None else [mute])[0]


def compose_many(profiles: Sequence[tuple[np.ndarray | torch.Tensor, np.ndarray]],
                 index: ItemIndex, k: int, *, diversity: float = 0.0,
                 exclude_items: Sequence[np.ndarray | None] | None = None,
                 exclude_mask: np.ndarray | None = None,
                 candidates_per_interest: int | None = None,
                 min_weight: float = 0.05,
                 mute: Sequence[np.ndarray | None] | None = None) -> list[ComposedList]:
    """``compose`` for many users: one (vectors, weights) pair per user, one index search.

    ``exclude_items[u]`` are user u's excluded items, ``mute[u]`` their muted interests;
    ``exclude_mask`` applies to all.
    ``compose_many([p], ...)[0]`` equals ``compose(*p, ...)``.
    """
    k = _check_k(k)
    if not 0.0 <= float(diversity) <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity!r}")
    m = k if candidates_per_interest is None else candidates_per_interest
    if _check_k(m) < k:
        raise ValueError(f"candidates_per_interest={m} is below k={k}; each interest must be "
                         f"able to fill the whole list")
    if exclude_items is not None and len(exclude_items) != len(profiles):
        raise ValueError(f"exclude_items has {len(exclude_items)} entries for "
                         f"{len(profiles)} profiles")
    allowed = None
    if exclude_mask is not None:
        em = np.asarray(exclude_mask)
        if em.dtype != np.bool_ or em.shape != (len(index),):
            raise ValueError(f"exclude_mask must be a bool array of shape ({len(index)},), got "
                             f"{em.dtype} {em.shape}")
        allowed = ~em
    vecs, ws = [], []
    for u, (v, w) in enumerate(profiles):
        v = _as_matrix(v, f"interest vectors of profile {u}")
        w = _weights(w)
        if len(v) != len(w):
            raise DataError(f"profile {u} has {len(v)} interest vectors but {len(w)} weights")
        vecs.append(v)
        ws.append(w)
    if not profiles:
        return []
    owner = np.repeat(np.arange(len(profiles)), [len(v) for v in vecs])  # (sum K,)
    seen = [None] * len(profiles) if exclude_items is None else list(exclude_items)
    _, found = index.search(np.concatenate(vecs), m, exclude=[seen[u] for u in owner],
                            allowed_mask=allowed)  # (sum K, M)
    mutes = [None] * len(profiles) if mute is None else list(mute)
    if len(mutes) != len(profiles):
        raise ValueError(f"mute has {len(mutes)} entries for {len(profiles)} profiles")
    out, lo = [], 0
    for u, (v, w) in enumerate(zip(vecs, ws, strict=True)):
        rows = found[lo: lo + len(v)]
        lo += len(v)
        muted = None
        if mutes[u] is not None:
            muted = np.asarray(mutes[u], dtype=bool)
            if muted.shape != w.shape:
                raise ValueError(f"mute of profile {u} must be a bool array of shape "
                                 f"{w.shape}, got {muted.shape}")
            if not (w[~muted] > 0).any():
                raise ValueError("every interest with weight is muted: nothing to compose")
        out.append(_fill(v, w, rows, index, k, float(diversity), min_weight, muted))
    return out


def _fill(v: np.ndarray, w: np.ndarray, found: np.ndarray, index: ItemIndex, k: int,
          lam: float, min_weight: float, muted: np.ndarray | None = None) -> ComposedList:
    """Greedy pick from per-interest candidate rows ``found`` (K, M) of item indices."""
    n_int = len(w)
    q = quotas(w if muted is None else np.where(muted, 0.0, w), k, min_weight=min_weight)
    cand = np.unique(found[found >= 0])  # (C,) sorted item indices
    empty = np.zeros(0, dtype=np.int64)
    if len(cand) == 0:
        return ComposedList(empty, np.zeros(0, np.float32), empty.copy(),
                            np.zeros(0, np.float32), q, w)
    s = index.score(v, cand)  # (K, C) raw scores
    ws = np.where(w[:, None] > 0, w[:, None] * s, -np.inf)  # (K, C) weighted, inactive -inf
    best = np.argmax(ws, axis=0)  # (C,) first max: ties to the lower interest
    if muted is not None and muted.any():  # drop the items that belong to a muted interest
        owner = np.argmax(np.where(w[:, None] > 0, s, -np.inf), axis=0)  # (C,) raw affinity
        keep = ~muted[owner]
        cand, s = cand[keep], s[:, keep]
        ws = np.where(muted[:, None], -np.inf, ws[:, keep])  # tagged by unmuted ones only
        best = np.argmax(ws, axis=0) if len(cand) else best[keep]
        found = np.where(np.isin(found, cand), found, -1)
        if len(cand) == 0:
            return ComposedList(empty, np.zeros(0, np.float32), empty.copy(),
                                np.zeros(0, np.float32), q, w)
    rel = ws[best, np.arange(len(cand))].astype(np.float32)  # (C,)
    by_rel = np.lexsort((cand, -rel))  # candidate positions, most relevant first
    lists = [np.searchsorted(cand, r[r >= 0]) for r in found]  # per interest, its own order
    taken = np.zeros(len(cand), dtype=bool)
    heads = np.zeros(n_int, dtype=np.int64)  # next unread position per interest list
    served = np.zeros(n_int, dtype=np.int64)
    rel_head = 0
    picks, tags = [], []

    def head(j: int) -> int | None:
        lst = lists[j]
        while heads[j] < len(lst) and taken[lst[heads[j]]]:
            heads[j] += 1
        return int(lst[heads[j]]) if heads[j] < len(lst) else None

    for t in range(min(k, len(cand))):
        pos = tag = None
        if math.floor(lam * (t + 1) + 1e-9) > math.floor(lam * t + 1e-9):  # quota turn
            behind = q * (t + 1) / k - served  # (K,)
            for j in np.lexsort((np.arange(n_int), -q, -behind)):
                if served[j] < q[j] and (pos := head(int(j))) is not None:
                    tag = int(j)
                    break
        if tag is None:  # relevance turn, or no interest can still fill its quota
            while taken[by_rel[rel_head]]:
                rel_head += 1
            pos = int(by_rel[rel_head])
            tag = int(best[pos])
        taken[pos] = True
        served[tag] += 1
        picks.append(pos)
        tags.append(tag)
    p, g = np.asarray(picks, dtype=np.int64), np.asarray(tags, dtype=np.int64)
    return ComposedList(items=cand[p], scores=rel[p], interest=g,
                        affinity=s[g, p].astype(np.float32), quotas=q, weights=w)


# -- list metrics for the decomposition benchmarks ------------------------------------------
@dataclass(frozen=True)
class InterestCoverage:
    """How a list spreads over a profile's interests.

    ``served``: distinct interests tagged; ``n_interests``: interests with positive weight;
    ``entropy``: Shannon entropy (bits) of the tag distribution; ``evenness``: entropy over
    its maximum ``log2(min(n_interests, len(list)))`` (1.0 when that maximum is 0).
    """

    served: int
    n_interests: int
    entropy: float
    evenness: float


def interest_coverage(composed: ComposedList) -> InterestCoverage:
    """Coverage of ``composed.weights``' interests by the list's tags."""
    n_int = int((composed.weights > 0).sum())
    counts = np.bincount(composed.interest, minlength=len(composed.weights))
    counts = counts[counts > 0]
    p = counts / max(1, counts.sum())
    entropy = float(-(p * np.log2(p)).sum()) if len(p) else 0.0
    top = math.log2(min(n_int, len(composed))) if len(composed) else 0.0
    return InterestCoverage(served=len(counts), n_interests=n_int, entropy=entropy,
                            evenness=entropy / top if top > 0 else 1.0)


def intra_list_diversity(item_vectors: np.ndarray | torch.Tensor, items: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cos) between the listed items' vectors.

    0 for lists of fewer than two items (no pairs). Zero vectors count as orthogonal.
    """
    ids = np.asarray(items, dtype=np.int64).ravel()
    x = item_vectors.detach().cpu().numpy() if isinstance(item_vectors, torch.Tensor) \
        else np.asarray(item_vectors)
    if x.ndim != 2:
        raise ValueError(f"item_vectors must be 2-d (N, D), got shape {x.shape}")
    if len(ids) and (ids.min() < 0 or ids.max() >= len(x)):
        raise ValueError(f"items must be indices in [0, {len(x)})")
    if len(ids) < 2:
        return 0.0
    u = _unit(np.asarray(x[ids], dtype=np.float64))  # (n, D)
    sim = u @ u.T  # (n, n)
    n = len(ids)
    return float(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
