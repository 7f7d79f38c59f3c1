"""Full-ranking NDCG@k / HR@k for early stopping (every catalogue item is a candidate).

Ranks are computed here on the model's torch scores (``prismrec.eval`` sits above training)
and scored by the one NDCG, ``prismrec.ranking.ndcg``: rank = the number of items scoring at
least the target's score (ties count against the model), a filtered target is a miss.
"""

from __future__ import annotations

import numpy as np
import torch

from prismrec.data.split import EvalCases
from prismrec.models.base import SequenceEncoder
from prismrec.ranking import ndcg
from prismrec.train.inference import encode_sequences

SCORE_FLOATS = 16_000_000  # one (B, N) block of scores at a time, ~64 MB


@torch.no_grad()
def rank_metrics(model: SequenceEncoder, cases: EvalCases, *, k: int = 10,
                 filter_seen: bool = True) -> dict[str, float]:
    """Mean ``ndcg@k`` and ``hr@k`` over cases; multiple targets per case are allowed."""
    if len(cases) == 0:
        raise ValueError("no validation cases")
    was_training = model.training
    model.eval()
    try:
        users = encode_sequences(model, cases.history)  # (R, D)
        n_items = model.n_items
        step = max(1, SCORE_FLOATS // n_items)
        ndcg_ = np.zeros(len(cases))
        hit = np.zeros(len(cases))
        for lo in range(0, len(cases), step):
            rows = np.arange(lo, min(lo + step, len(cases)))
            scores = model.score_all(users[lo:lo + len(rows)])  # (b, N)
            if filter_seen:
                hist = cases.history.take(rows)
                scores[torch.from_numpy(hist.row_ids()),
                       torch.from_numpy(hist.items)] = -torch.inf
            tgt = cases.targets.take(rows)
            t_row = tgt.row_ids()
            pairs = np.unique(np.stack([t_row, tgt.items], 1), axis=0)  # distinct targets
            r, it = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
            s = scores[r, it]  # (E,)
            rank = torch.cat([(scores[r[j:j + len(rows)]] >= s[j:j + len(rows), None]).sum(1)
                              for j in range(0, len(r), len(rows))])  # (E,) 1-based, ties count
            ok = torch.isfinite(s) & (rank <= k)
            ranks = np.where(ok.numpy(), rank.numpy(), np.inf)  # a filtered target: a miss
            n_t = np.bincount(pairs[:, 0], minlength=len(rows))
            ndcg_[rows] = ndcg(pairs[:, 0], ranks, n_t, k)
            hit[rows] = np.bincount(pairs[ok.numpy(), 0], minlength=len(rows)) > 0
        return {f"ndcg@{k}": float(ndcg_.mean()), f"hr@{k}": float(hit.mean())}
    finally:
        model.train(was_training)
