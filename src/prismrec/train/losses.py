"""Next-item losses on the hidden vectors of real positions.

Full-softmax cross-entropy over the whole catalogue is the default: it is what makes SASRec
strong (Klenitskiy & Vasilev, RecSys 2023) and costs one (M, N) matrix product. For very
large catalogues, sampled softmax scores the target against shared negatives and subtracts
log Q (the sampling probability) from every logit, so the expected gradient matches the
full softmax (Bengio & Senecal 2008; Yi et al. 2019 for in-batch negatives).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from prismrec.models.base import SequenceEncoder

BLOCK_FLOATS = 1 << 19  # logits per block of the fused loss: ~2 MB, stays in the CPU cache


class _BlockedSoftmaxCE(torch.autograd.Function):
    """Mean softmax cross-entropy of ``hidden @ table.T + bias`` without the (M, N) matrix.

    Forward walks blocks of rows, and for each block computes the logits, the loss and
    straight away the gradients (softmax minus the target distribution); backward only
    scales them. Same FLOPs as ``F.cross_entropy`` on full logits, but the (M, N) logits and
    their gradient never travel through main memory, which is what bounds the full softmax
    on a CPU. Each row may have several weighted targets (weights sum to 1 per row).
    ``exclude`` (M, W) lists items (-1: none) left out of a row's softmax, unless a target.
    """

    @staticmethod
    def forward(ctx, hidden, table, bias, targets, weights, exclude):
        m, n = hidden.shape[0], table.shape[0]
        block = max(16, BLOCK_FLOATS // max(n, 1))
        grad_h = torch.empty_like(hidden)  # (M, D)
        grad_t = torch.zeros_like(table)  # (N, D)
        grad_b = None if bias is None else torch.zeros_like(bias)  # (N,)
        total = hidden.new_zeros((), dtype=torch.float64)
        for s in range(0, m, block):
            h, t, w = hidden[s:s + block], targets[s:s + block], weights[s:s + block]
            logits = h @ table.T if bias is None else torch.addmm(bias, h, table.T)  # (b, N)
            if exclude is not None:
                _mask_out(logits, exclude[s:s + block], t)
            p = torch.log_softmax(logits, dim=1)  # (b, N), one fused pass
            total -= (p.gather(1, t) * w).sum(dtype=torch.float64)
            p = p.exp_()  # (b, N) softmax, in place
            p.scatter_add_(1, t, -w)  # d loss / d logits = softmax - target distribution
            grad_h[s:s + block] = p @ table
            grad_t.addmm_(p.T, h)
            if grad_b is not None:
                grad_b += p.sum(0)
        ctx.m = m
        ctx.save_for_backward(grad_h, grad_t, *(() if grad_b is None else (grad_b,)))
        return (total / m).to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        scale = grad_out / ctx.m
        grad_b = saved[2] * scale if len(saved) == 3 else None
        return saved[0] * scale, saved[1] * scale, grad_b, None, None, None


def _mask_out(logits: torch.Tensor, exclude: torch.Tensor, targets: torch.Tensor) -> None:
    """Set ``logits[r, exclude[r]]`` to -inf in place, except padding (-1) and targets.

    Padding and targets are pointed at the row's first target and write its own logit back,
    so every scattered write to one cell carries the same value.
    """
    keep = (exclude >= 0) & ~(exclude[:, :, None] == targets[:, None, :]).any(-1)  # (b, W)
    first = targets[:, :1]  # (b, 1)
    cols = torch.where(keep, exclude, first)  # (b, W)
    own = logits.gather(1, first).expand_as(cols)  # (b, W)
    logits.scatter_(1, cols, torch.where(keep, torch.full_like(own, -torch.inf), own))


def target_weights(targets: torch.Tensor, decay: float = 1.0) -> torch.Tensor:
    """(M, K) targets with -1 padding → weights decay**j over real targets, summing to 1."""
    w = (targets >= 0).float() * decay ** torch.arange(
        targets.shape[1], dtype=torch.float32, device=targets.device)
    return w / w.sum(1, keepdim=True).clamp(min=1e-12)


Output = tuple[torch.Tensor, "torch.Tensor | None"]  # item vectors (N, D), biases (N,)


def model_output(model: SequenceEncoder) -> Output:
    """The model's scoring table and output bias (what ``score_all`` multiplies by)."""
    return model.output_table(), model.out_bias


def full_ce(model: SequenceEncoder, hidden: torch.Tensor, targets: torch.Tensor,
            decay: float = 1.0, exclude: torch.Tensor | None = None,
            output: Output | None = None) -> torch.Tensor:
    """hidden (M, D), targets (M,) → mean cross-entropy over all N items (fused, blocked).

    ``targets`` may be (M, K): the next K items (-1 where there are fewer), weighted
    ``decay**j`` and normalised per row, as in "dense all-action" losses. ``exclude``
    (M, W), -1 padded, takes items out of a row's softmax: the items a user already had,
    when recommendations leave seen items out (training then matches that ranking).
    ``output``: another (item vectors, biases) to score with, e.g. ``model.text_output()``.
    """
    if targets.ndim == 1:
        targets = targets[:, None]
    weights = target_weights(targets, decay)  # (M, K)
    targets = targets.clamp(min=0)
    table, bias = model_output(model) if output is None else output
    if not torch.is_grad_enabled():
        logits = hidden @ table.T if bias is None else torch.addmm(bias, hidden, table.T)
        if exclude is not None:
            _mask_out(logits, exclude, targets)
        logp = torch.log_softmax(logits, dim=1)
        return -(logp.gather(1, targets) * weights).sum(1).mean()
    return _BlockedSoftmaxCE.apply(hidden, table, bias, targets, weights, exclude)


class SampledSoftmax:
    """Sampled softmax with logQ correction; negatives shared by all positions of a step.

    ``negatives``: "uniform" or "popularity" (drawn from training frequencies, smoothed by
    +1), or "in-batch" (the step's own targets, whose Q is their training frequency).
    """

    def __init__(self, item_counts: np.ndarray, n_negatives: int, negatives: str,
                 generator: torch.Generator) -> None:
        counts = torch.as_tensor(item_counts, dtype=torch.float64) + 1.0
        if negatives == "uniform":
            counts = torch.ones_like(counts)
        self.probs = (counts / counts.sum()).float()  # (N,)
        self.log_q = self.probs.log()  # (N,)
        self.n_negatives, self.mode, self.generator = n_negatives, negatives, generator

    def __call__(self, model: SequenceEncoder, hidden: torch.Tensor, targets: torch.Tensor,
                 output: Output | None = None) -> torch.Tensor:
        table, bias = model_output(model) if output is None else output  # (N, D), (N,)
        if self.mode == "in-batch":
            neg = targets
        else:
            neg = torch.multinomial(self.probs, self.n_negatives, replacement=True,
                                    generator=self.generator)  # (S,)
        neg = neg.to(table.device)  # drawn on the CPU, from the seeded generator
        log_q = self.log_q.to(table.device)
        pos = (hidden * table[targets]).sum(-1) - log_q[targets]  # (M,)
        negl = hidden @ table[neg].T - log_q[neg]  # (M, S)
        if bias is not None:
            pos = pos + bias[targets]
            negl = negl + bias[neg]
        negl = negl.masked_fill(neg[None, :] == targets[:, None], float("-inf"))  # own target
        logits = torch.cat([pos[:, None], negl], dim=1)  # (M, 1 + S)
        return F.cross_entropy(logits, torch.zeros_like(targets))
