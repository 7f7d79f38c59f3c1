"""The item table laid out for serving: score a batch of users, take the top k.

The top-k itself (one tie rule for every path) is ``prismrec.ranking.topk``.
"""

from __future__ import annotations

import threading

import torch

from prismrec.ranking import BLOCK, topk


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
