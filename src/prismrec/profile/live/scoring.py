"""Scoring a batch of users from their states: the score table, the blend, one block top-k.

``RecommendationBatch`` is ``LiveProfiles.recommendations_many`` after its first step (checks
and states, read by the service core): ``score()`` runs the (B, D) x (D, N) product and one
top-k over the batch, ``results()`` composes each list (``compose``). A batch holds the
``Served`` it was started with, so an ``add_items`` meanwhile (a new ``Served`` swapped in)
never mixes widths inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from prismrec.data.sequences import Sequences
from prismrec.models.item_item import blend
from prismrec.profile.live.bundle import Served
from prismrec.profile.live.compose import Recommendations, top_list
from prismrec.profile.live.state import UserState


@dataclass
class Scored:
    """One request that needs the model: its place in the batch and what it asked for."""

    slot: int  # position in the request list
    user: str
    k: int
    diversity: float
    state: UserState
    banned: np.ndarray  # sorted unique item indices left out
    bag: Sequences | None = None  # the user's history, for a blend's item-item part


def blended(s: Served, scores: torch.Tensor, bag: Sequences | None) -> torch.Tensor:
    """``scores`` (N,) blended with the bundle's item-item part, if it has one.

    ``bag`` is the user's history as ``Recommender.recommend`` sees it: the known history
    and the logged events of known items, in time order (``engine.history_bag``).
    """
    ii = s.bundle.item_item
    if ii is None:
        return scores
    return blend(scores[None], ii.scores(bag), s.bundle.blend_weight)[0]  # (N,)


def pool_size(n_eligible: int, k: int, diversity: float) -> int:
    """Candidates kept for a request: k, or 4k (at least k + 20) for MMR to choose from."""
    return min(n_eligible, k if diversity == 0 else max(4 * k, k + 20))


def banned_items(s: Served, user: str, st: UserState | None, filter_seen: bool,
                 exclude: Sequence[str] | None) -> np.ndarray:
    """Sorted unique item indices a request leaves out: with ``filter_seen`` the user's
    logged items and full known history, plus the known ids of ``exclude``."""
    parts = []
    if filter_seen and st is not None:
        parts.append(st.seen)
        if st.n_train:
            row = s.known_row(user)
            if row is not None:
                parts.append(row[0])
    if exclude:
        if isinstance(exclude, str):
            raise TypeError("exclude takes a list of item ids, not one string")
        parts.append(np.array([s.item_index[x] for x in exclude
                               if isinstance(x, str) and x in s.item_index],
                              dtype=np.int64))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    if len(parts) == 1 and parts[0] is st.seen:  # already sorted and unique
        return st.seen
    return np.unique(np.concatenate(parts).astype(np.int64))


class RecommendationBatch:
    """See the module docstring. ``score()`` touches only this batch and its ``Served``, so
    it may run on another thread; it writes into that thread's score buffer, so one thread
    scores one batch at a time."""

    def __init__(self, served: Served, out: list, scored: list[Scored]) -> None:
        self.served, self._out, self._scored = served, out, scored
        self._ranked: tuple[np.ndarray, np.ndarray, list[int]] | None = None

    def score(self) -> None:
        """Every scored request's candidates, best first (torch)."""
        if not self._scored or self._ranked is not None:
            return
        s = self.served
        n = s.scorer.n_items
        with torch.no_grad():
            hidden = torch.from_numpy(np.stack([r.state.hidden for r in self._scored]))  # (B, D)
            scores = s.scorer.scores(hidden)  # (B, N + padding), this thread's buffer
            pools = []
            for b, r in enumerate(self._scored):
                if s.bundle.item_item is not None:
                    scores[b, :n] = blended(s, scores[b, :n], r.bag)
                if len(r.banned):
                    scores[b, torch.from_numpy(r.banned)] = -torch.inf
                pools.append(pool_size(n - len(r.banned), r.k, r.diversity))
            # one top-k over the batch (cheaper than one per row); each row keeps its pool
            values, indices = s.scorer.topk(scores, max(pools))
        self._ranked = indices.numpy(), values.double().numpy(), pools

    def results(self) -> list[Recommendations | Exception]:
        """One result per request, in order (an exception where that request failed)."""
        if self._scored and self._ranked is None:
            raise RuntimeError("RecommendationBatch.results() before score()")
        out = list(self._out)
        if self._ranked is not None:
            top_idx, top_val, pools = self._ranked
            for b, r in enumerate(self._scored):
                try:
                    out[r.slot] = top_list(self.served, r.user, r.k, r.diversity, r.state,
                                           top_idx[b, :pools[b]], top_val[b, :pools[b]])
                except Exception as exc:
                    out[r.slot] = exc
        return out
