"""Composing a user's list from ranked candidates: diversity (MMR) and reasons.

Plain functions over a ``Served`` (one bundle and its tables); no store access, no model
work beyond a few rows of the unit item table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from prismrec.data.vocab import Vocab
from prismrec.errors import UnknownIdError
from prismrec.profile.live.bundle import Served
from prismrec.profile.live.state import RECENT, UserState
from prismrec.ranking import topk


@dataclass(frozen=True)
class Recommendations:
    """Top items for one user, best first, with the recent item behind each (if any)."""

    user: str
    items: list[str]
    scores: list[float]  # model scores, or training counts when fallback == "popular"
    because: list[str | None]  # the recent item most similar by item-embedding cosine
    similarity: list[float | None]  # that cosine
    fallback: str | None  # "popular" when the user has no usable history, else None
    checkpoint: str

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({
            "rank": np.arange(1, len(self.items) + 1, dtype=np.int64),
            "item": list(self.items),
            "score": np.asarray(self.scores, dtype=np.float64),
            "because": pd.Series(self.because, dtype=object),
            "similarity": np.array([np.nan if x is None else x for x in self.similarity],
                                   dtype=np.float64)})
        frame.attrs.update(fallback=self.fallback, user=self.user, checkpoint=self.checkpoint)
        return frame


def popular(s: Served, user: str, k: int, banned: np.ndarray) -> Recommendations:
    """The most popular items of the known histories (ties: lower index), banned left out."""
    order = s.popular_order
    if len(banned):
        order = order[~np.isin(order, banned)]
    top = order[:k]
    return Recommendations(user, s.items.ids(top), s.popularity[top].tolist(),
                           [None] * len(top), [None] * len(top), "popular", s.checkpoint)


def top_list(s: Served, user: str, k: int, diversity: float, st: UserState, idx: np.ndarray,
             val: np.ndarray) -> Recommendations:
    """One user's list from their best candidates, best first: MMR, reasons."""
    if diversity > 0 and len(idx):
        order = mmr(s, idx, val, k, diversity)
        idx, val = idx[order], val[order]
    idx, val = idx[:k], val[:k]
    because, similarity = reasons(s, idx, st)
    return Recommendations(user, s.items.ids(idx), val.tolist(), because, similarity, None,
                           s.checkpoint)


def mmr(s: Served, idx: np.ndarray, val: np.ndarray, k: int, diversity: float) -> np.ndarray:
    """Greedy maximal marginal relevance over the candidate pool; returns an order."""
    vec = s.unit_items[idx]  # (P, D)
    sim = vec @ vec.T  # (P, P)
    span = val[0] - val[-1]
    rel = (val - val[-1]) / span if span > 0 else np.ones_like(val)  # in [0, 1]
    chosen = [0]
    left = np.ones(len(idx), dtype=bool)
    left[0] = False
    max_sim = sim[0].copy()
    while len(chosen) < min(k, len(idx)):
        gain = (1 - diversity) * rel - diversity * max_sim
        gain[~left] = -np.inf
        j = int(np.argmax(gain))  # ties: the better-scored (earlier) candidate
        chosen.append(j)
        left[j] = False
        max_sim = np.maximum(max_sim, sim[j])
    return np.asarray(chosen, dtype=np.int64)


def reasons(s: Served, idx: np.ndarray, st: UserState) -> tuple[list, list]:
    """For each recommended item, the recent item nearest by cosine (None if not > 0)."""
    recent = st.recent_items[-RECENT:][::-1]  # newest first: ties go to it
    if len(idx) == 0 or len(recent) == 0:
        return [None] * len(idx), [None] * len(idx)
    sim = s.unit_items[idx] @ s.unit_items[recent].T  # (K, R)
    best = sim.argmax(axis=1)
    best_sim = sim[np.arange(len(best)), best].astype(np.float64).tolist()
    ids = s.items.ids(recent[best])
    keep = [x > 0 for x in best_sim]
    return ([i if ok else None for i, ok in zip(ids, keep, strict=True)],
            [x if ok else None for x, ok in zip(best_sim, keep, strict=True)])


def similar_items(s: Served, item, k: int) -> pd.DataFrame:
    """The ``k`` items nearest to ``item`` by cosine of the model's output item vectors
    (the item itself left out; ties: lower index): columns rank, item, score."""
    try:
        i = s.items.index_of(item)
    except KeyError:
        raise UnknownIdError(f"unknown item {Vocab._key(item)!r}: the model does not know "
                             "it") from None
    sims = torch.from_numpy(s.unit_items @ s.unit_items[i])[None]  # (1, N)
    sims[0, i] = -torch.inf
    k = min(k, s.n_items - 1)
    values, idx = topk(sims, k)
    return pd.DataFrame({"rank": np.arange(1, k + 1), "item": s.items.ids(idx[0].numpy()),
                         "score": values[0].double().numpy()})
