"""Full-ranking NDCG@k / HR@k for early stopping (every catalogue item is a candidate).

Kept here rather than imported from ``prismrec.eval``, which sits above training. The
definitions match it for one target per case: rank = the number of items scoring at least
the target's score (ties count against the model), a filtered target is a miss.
"""

from __future__ import annotations

import numpy as np
import torch

from prismrec.data.split import EvalCases
from prismrec.models.base import SequenceEncoder
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
        ndcg = np.zeros(len(cases))
        hit = np.zeros(len(cases))
        discount = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
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
            gain = torch.zeros(len(rows), dtype=torch.float64)
            gain.index_add_(0, r[ok], torch.from_numpy(discount)[rank[ok] - 1])
            n_t = np.bincount(pairs[:, 0], minlength=len(rows))
            ideal = np.cumsum(discount)[np.minimum(n_t, k) - 1]
            ndcg[rows] = gain.numpy() / ideal
            hit[rows] = np.bincount(pairs[ok.numpy(), 0], minlength=len(rows)) > 0
        return {f"ndcg@{k}": float(ndcg.mean()), f"hr@{k}": float(hit.mean())}
    finally:
        model.train(was_training)
