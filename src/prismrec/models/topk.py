"""Exact top-k over a large catalogue, faster than one ``torch.topk`` pass for small k.

Scoring every item and taking the best k is the whole cost of serving a recommendation from a
stored state, and ``torch.topk`` over 100,000 scores costs ~0.2 ms a row on one core. The k
best scores of a row all lie in the k blocks (of ``block`` consecutive items) with the highest
block maxima: a score outside those blocks has at least k distinct larger-or-equal scores,
the maxima. So one vectorised max per block, a top-k over the block maxima and a top-k over
k·block candidates give the same values as ``torch.topk``, in about half the time (ties may
pick other indices of equal score, as ``torch.topk`` itself may).
"""

from __future__ import annotations

import threading

import torch

BLOCK = 128


def topk(scores: torch.Tensor, k: int, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of each row's k largest scores, best first; scores (B, N)."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, N), got shape {tuple(scores.shape)}")
    b, n = scores.shape
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    n_blocks = -(-n // block)
    if k == 0 or n_blocks <= 4 * k:  # too few blocks to skip any: the plain pass is as fast
        top = torch.topk(scores, k, dim=1, sorted=True)
        return top.values, top.indices
    pad = n_blocks * block - n
    padded = torch.nn.functional.pad(scores, (0, pad), value=-torch.inf) if pad else scores
    blocks = padded.reshape(b, n_blocks, block)
    best_blocks = torch.topk(blocks.amax(dim=2), k, dim=1).indices  # (B, k)
    cand = blocks.gather(1, best_blocks[:, :, None].expand(b, k, block)).reshape(b, k * block)
    values, pos = torch.topk(cand, k, dim=1, sorted=True)  # (B, k)
    indices = best_blocks.gather(1, pos // block) * block + pos % block
    return values, indices


class ScoreTable:
    """Every item's output vector laid out for serving: score a batch of users, take top k.

    Serving scores the whole catalogue per request, so the (B, D) x (D, N) product is
    bound by reading the item table. Kept here transposed and contiguous, (D, N) -- one
    streaming pass, ~1.4x faster than multiplying by ``table.T`` -- and padded to a whole
    number of top-k blocks with a bias of -inf, so ``topk`` needs no padded copy of the
    scores. The (B, N) scores go into a buffer each thread reuses: a fresh 4 MB tensor per
    batch is fresh pages from the OS each time, which made the p99 product about 3x slower.
    """

    def __init__(self, table: torch.Tensor, bias: torch.Tensor | None = None,
                 block: int = BLOCK) -> None:
        n, d = table.shape
        self.n_items, self.block = n, block
        n_pad = -(-n // block) * block
        self.table = torch.zeros(d, n_pad, dtype=torch.float32)
        self.table[:, :n] = table.detach().float().T
        self.bias = torch.full((n_pad,), -torch.inf)
        self.bias[:n] = 0.0 if bias is None else bias.detach().float()
        self._local = threading.local()

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """(B, D) user vectors -> (B, N_padded) scores; columns from ``n_items`` on are -inf.

        The result is this thread's buffer: valid until the thread's next call.
        """
        b = users.shape[0]
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.shape[0] < b:
            buf = self._local.buf = torch.empty(max(b, 16), self.table.shape[1])
        out = buf[:b]
        return torch.addmm(self.bias, users.float(), self.table, out=out)

    def topk(self, scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, indices) of each row's k best, best first, over ``scores`` from above."""
        return topk(scores, k, self.block)
