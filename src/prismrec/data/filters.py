"""Event filters applied before indexing: k-core, repeat removal, minimum history length.

All are vectorised over the event table and keep the surviving rows in their input order.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from prismrec.data.interactions import Interactions

log = logging.getLogger(__name__)


def k_core(inter: Interactions, k: int, *, user_k: int | None = None,
           item_k: int | None = None) -> Interactions:
    """Keep events whose user has at least ``user_k`` and item at least ``item_k`` events.

    Removing a sparse item can push a user under the threshold and vice versa, so the filter
    repeats until nothing changes. ``user_k``/``item_k`` default to ``k``. May return no events.
    """
    user_k = k if user_k is None else user_k
    item_k = k if item_k is None else item_k
    if min(user_k, item_k) < 0:
        raise ValueError("k, user_k and item_k must not be negative")
    u = pd.factorize(inter.frame["user"])[0]
    i = pd.factorize(inter.frame["item"])[0]
    keep = np.ones(len(u), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        u_count = np.bincount(u[keep], minlength=u.max(initial=-1) + 1)
        i_count = np.bincount(i[keep], minlength=i.max(initial=-1) + 1)
        new = keep & (u_count[u] >= user_k) & (i_count[i] >= item_k)
        if new.sum() == keep.sum():
            break
        keep = new
    log.debug("k_core(user_k=%d, item_k=%d): %d of %d events after %d rounds",
              user_k, item_k, keep.sum(), len(keep), rounds)
    return inter.select(keep)


def dedupe(inter: Interactions, *, consecutive_only: bool = True) -> Interactions:
    """Drop repeated (user, item) events.

    ``consecutive_only=True`` drops an event only when the same user's previous event (in time
    order, ties in input order) was the same item: a re-listen streak collapses to its first
    event but a later return to the item is kept. ``False`` keeps only each pair's first event.
    """
    f = inter.frame
    u = pd.factorize(f["user"])[0]
    i = pd.factorize(f["item"])[0]
    order = np.lexsort((f["timestamp"].to_numpy(), u))  # stable: ties keep input order
    us, is_ = u[order], i[order]
    if consecutive_only:
        repeat = np.zeros(len(us), dtype=bool)
        repeat[1:] = (us[1:] == us[:-1]) & (is_[1:] == is_[:-1])
    else:
        repeat = pd.DataFrame({"u": us, "i": is_}).duplicated().to_numpy()
    drop = np.empty_like(repeat)
    drop[order] = repeat
    return inter.select(~drop)


def min_user_events(inter: Interactions, n: int) -> Interactions:
    """Keep only users with at least ``n`` events (one pass; items are not filtered)."""
    u = pd.factorize(inter.frame["user"])[0]
    counts = np.bincount(u, minlength=u.max(initial=-1) + 1)
    return inter.select(counts[u] >= n)
