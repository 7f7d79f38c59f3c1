"""How much each history item contributes to a recommendation, by the model's own scoring.

A reason may only cite what made the recommendation. The contribution of history item h to
the score of item i is what the score loses when h is taken out of the history (every
occurrence of it), everything else kept in order, and the history is scored again by the
same function that ranked the list (occlusion attribution):

    c_h(i) = score(history)[i] - score(history without h)[i]

``served_scorer`` is the score ``Recommender.recommend`` ranks by: the sequence model, plus
the blend's item-item part when there is one, so for the blend's part the contribution is
exactly the item-item weight of h towards i (times h's recency weight, on the blend's
z-scale). ``interest_scorer`` is the relevance the composed list ranks by,
``max_k w_k s_k(i)`` from the interest head (or the history clusters' centroids' model
score for a model without a head: see ``profile.build_profile``). One batched scoring pass
per user covers every recommended item: U + 1 histories for U distinct history items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from prismrec.data.sequences import Sequences
from prismrec.models.base import SequenceEncoder
from prismrec.train.batching import length_batches
from prismrec.train.inference import BATCH_EVENTS, _windowed

Scorer = Callable[[Sequences], np.ndarray]  # histories (R rows) -> scores (R, N)


@dataclass(frozen=True)
class Contributions:
    """``drop[u, j]``: how much target j's score falls when ``items[u]`` leaves the history.

    ``items`` are the distinct history items (model indices), ordered by their latest
    position (``position``, oldest first); ``base`` (n_targets,) the targets' full scores.
    """

    items: np.ndarray  # (U,) int64
    position: np.ndarray  # (U,) int64 latest index of each item in the history
    drop: np.ndarray  # (U, n_targets) float64
    base: np.ndarray  # (n_targets,) float64


def without_each(items: np.ndarray, times: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, Sequences]:
    """(distinct items, their latest positions, histories): row 0 is the whole history, row
    u+1 the history without every occurrence of distinct item u (times kept)."""
    idx = np.asarray(items, dtype=np.int64).ravel()
    t = (np.arange(len(idx), dtype=np.float64) if times is None
         else np.asarray(times, dtype=np.float64).ravel())
    if len(t) != len(idx):
        raise ValueError(f"{len(idx)} items but {len(t)} times")
    last = {int(it): p for p, it in enumerate(idx)}  # latest occurrence wins
    distinct = np.array(sorted(last, key=last.get), dtype=np.int64)
    position = np.array([last[int(i)] for i in distinct], dtype=np.int64)
    rows = [idx] + [idx[idx != d] for d in distinct]
    times_ = [t] + [t[idx != d] for d in distinct]
    return distinct, position, Sequences.from_lists(rows, times_)


def occlusion(score: Scorer, items: np.ndarray, times: np.ndarray | None,
              targets: np.ndarray) -> Contributions:
    """Each distinct history item's contribution to each target item's score."""
    tg = np.asarray(targets, dtype=np.int64).ravel()
    distinct, position, seqs = without_each(items, times)
    if len(distinct) == 0:
        raise ValueError("an empty history has nothing to attribute a score to")
    s = np.asarray(score(seqs), dtype=np.float64)[:, tg]  # (U + 1, n_targets)
    return Contributions(distinct, position, s[0][None, :] - s[1:], s[0])


def served_scorer(recommender) -> Scorer:
    """The scores ``Recommender.recommend`` ranks by (sequence model, plus the blend)."""
    def score(seqs: Sequences) -> np.ndarray:
        return recommender.score(np.zeros(len(seqs), dtype=np.int64), seqs)

    return score


def interest_scorer(model: SequenceEncoder) -> Scorer:
    """The composed list's relevance ``max_k w_k s_k(item)`` (weights normalised to sum 1).

    ``s_k(i) = <v_k, e_i> + b_i`` with the head's interest vectors v_k and weights w_k after
    the row's last event; an empty row scores ``b_i`` (the model's empty history). Needs a
    model with an interest head.
    """
    if model.head is None:
        raise ValueError(f"this {model.name} model has no interest head: use served_scorer")

    @torch.no_grad()
    def score(seqs: Sequences) -> np.ndarray:
        was = model.training
        model.eval()
        try:
            table = model.output_table().float()  # (N, D)
            bias = (model.out_bias.float() if model.out_bias is not None
                    else torch.zeros(len(table)))  # (N,)
            out = bias.repeat(len(seqs), 1)  # (R, N): empty rows keep the bias
            win, gaps = _windowed(model, seqs)
            full = np.flatnonzero(win.lengths > 0)
            sub = win.take(full)
            sub_gaps = None if gaps is None else gaps[np.isin(win.row_ids(), full)]
            for rows, x, lens, g in length_batches(sub, sub_gaps, BATCH_EVENTS):
                it = model.interests(x, lens, g)
                w = it.weights / it.weights.sum(-1, keepdim=True).clamp(min=1e-12)  # (B, K)
                s = it.vectors @ table.T + bias  # (B, K, N)
                s = torch.where(w[..., None] > 0, w[..., None] * s, -torch.inf)
                out[torch.from_numpy(full[rows])] = s.max(1).values  # (B, N)
            return out.numpy()
        finally:
            model.train(was)

    return score
