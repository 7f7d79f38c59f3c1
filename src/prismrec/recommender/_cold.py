"""Cold items: where an item with text but no training events is placed, chosen on validation.

An item with no training events (one the data has but training never saw, or one added
later with ``add_items``) has only its text: its vector is the text projection ``p(t)`` and,
before this module, its output bias was the trained items' mean. Trained items compete
with their ID row on top of ``p(t)`` and a bias learned from their events, so cold items
sat systematically low: on Amazon Scientific cold targets reached 0.13x the NDCG@10 of warm
ones (docs/benchmarks.md, "Item text").

A cold item is now placed as ``scale * p(t)`` with bias ``mean_bias + shift`` — written
into the model as its ID row ``(scale - 1) * p(t)`` and its output bias, so every scoring
path (batch, streaming, live service, saved checkpoints) sees it unchanged. ``scale`` and
``shift`` are chosen after training on the validation cases: a fixed-seed sample of
``PSEUDO_COLD`` of the trained items is placed as cold items would be (their ID row
dropped), and the pair from ``SCALES`` x ``SHIFTS`` with the best NDCG@10 over *all*
validation cases wins — a gain for the pseudo-cold targets has to pay for what it costs the
others. (1, 0) is the old placement and is on the grid, so the choice is never worse than it
on validation. The user vectors are computed once with the trained model (the pseudo-cold
items keep their trained input rows in the histories: an approximation that makes the
search cost one encoding pass plus a score matrix per grid point). Without validation cases
the placement is the old one. ``Recommender.cold_placement_`` keeps the choice and its
validation table; ``save`` keeps it, so ``add_items`` after ``load`` places items the same
way. Measured on Scientific (docs/benchmarks.md, "Item text", 10% of the items cold, runs to
early stopping, 3 seeds): cold targets' NDCG@10 0.0245, 0.32x the warm targets' 0.0760;
with the text head 0.0342, 0.45x the warm targets' 0.0761 (0.51x through ``add_items``
after training on the warm items only), and validation NDCG@10 0.0888 against 0.0863.
The old placement on the same models gave cold targets 0.0096 (0.0117 with the head) and
warm ones 0.0781 (0.0787): the cold items placed higher take about 3% of the warm targets'
NDCG@10, a trade the choice on all validation cases accepts.

A model with a text head (``text_head`` > 0: a second softmax in training that scores items
by their text projection and a bias predicted from their text, so the text path must rank on
its own) places a cold item by that head: the vector ``scale * p(t)`` as above, and the bias
``mean_bias + shift + scale * (b(t) - b_mean)``, where ``b(t)`` is the head's text-predicted
bias and ``b_mean`` its mean over the trained items (``text_bias_mean``): a cold item's score
is the text head's logit, rescaled and shifted onto the main softmax's scale.

Why not predict the ID row from the text (a ridge regression fitted on the trained items)?
Measured, it placed cold items lower still: the text part already carries what text
predicts linearly, the penalty chosen by leave-one-out went to the top of its grid, and what
remained was the mean trained ID row, which the softmax pushes away from users
(Scientific cold NDCG@10 0.0032 -> 0.0000, synthetic 0.0264 -> 0.0000; docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from prismrec.data.split import EvalCases
from prismrec.models.base import SequenceEncoder

SCALES = (1.0, 1.25, 1.5)
SHIFTS = (0.0, 0.25, 0.5, 1.0, 1.5)
PSEUDO_COLD = 0.1  # share of the trained items placed as cold items for the choice
MIN_ITEMS = 10  # fewer trained items than this: no choice, the old placement
SEED = 0


@dataclass
class ColdPlacement:
    """How items without training events are placed: ``scale * p(t)``, ``mean_bias + shift``."""

    scale: float = 1.0
    shift: float = 0.0
    mean_bias: float | None = None  # the trained items' mean output bias (None: no bias)
    chosen_on: str = "default"  # "validation" | "default" (no validation cases)
    table: list[dict] = field(default_factory=list)  # scale, shift, ndcg@10 (all / pseudo-cold)
    text_bias_mean: float | None = None  # text head: its bias's mean over the trained items

    def to_dict(self) -> dict:
        return {"scale": self.scale, "shift": self.shift, "mean_bias": self.mean_bias,
                "chosen_on": self.chosen_on, "table": self.table,
                "text_bias_mean": self.text_bias_mean}

    @classmethod
    def from_dict(cls, d: dict) -> ColdPlacement:
        text_mean = d.get("text_bias_mean")  # absent from checkpoints before the text head
        p = cls(float(d["scale"]), float(d["shift"]),
                None if d["mean_bias"] is None else float(d["mean_bias"]), str(d["chosen_on"]),
                list(d.get("table") or []), None if text_mean is None else float(text_mean))
        if not (np.isfinite(p.scale) and np.isfinite(p.shift)) or p.scale <= 0:
            raise ValueError(f"scale {p.scale} and shift {p.shift} must be finite, scale > 0")
        return p


def _text_part(model: SequenceEncoder) -> torch.Tensor:
    emb = model.items
    return emb.proj(emb.text_vectors[1:])  # (N, D)


def _cold_bias(model: SequenceEncoder, items: torch.Tensor, scale: float, shift: float,
               mean_bias: float, text_bias_mean: float | None) -> torch.Tensor:
    """(M,) output biases of cold ``items``: ``mean_bias + shift``, plus, for a model with
    a text head, ``scale`` times its text-predicted bias relative to the trained items'."""
    out = torch.full((items.numel(),), mean_bias + shift,
                     device=model.items.text_vectors.device)
    if model.text_bias is not None and text_bias_mean is not None:
        text = model.items.text_vectors[items + 1]  # (M, Dt); model row = index + 1
        out += scale * (model.text_bias(text).squeeze(-1) - text_bias_mean)
    return out


@torch.no_grad()
def place(model: SequenceEncoder, items: torch.Tensor, placement: ColdPlacement) -> None:
    """Write ``placement`` into the ID rows and biases of ``items`` (dataset indices, (M,))."""
    emb = model.items
    if items.numel() == 0 or emb.proj is None or model.out_table is not None:
        return
    if emb.id is not None:
        text = emb.proj(emb.text_vectors[items + 1])  # (M, D); model row = index + 1
        emb.id.weight[items + 1] = ((placement.scale - 1.0) * text).to(emb.id.weight.dtype)
    if model.out_bias is not None and placement.mean_bias is not None:
        model.out_bias[items] = _cold_bias(model, items, placement.scale, placement.shift,
                                           placement.mean_bias, placement.text_bias_mean
                                           ).to(model.out_bias.dtype)


@torch.no_grad()
def choose(model: SequenceEncoder, trained: torch.Tensor, valid: EvalCases | None,
           filter_seen: bool = True) -> ColdPlacement:
    """The placement with the best validation NDCG@10 (see the module docstring)."""
    from prismrec.eval.evaluate import evaluate
    from prismrec.train.inference import encode_sequences

    trained = trained.bool()
    bias = model.out_bias
    mean_bias = None if bias is None else float(bias[trained].mean()) if trained.any() else 0.0
    text_mean = None
    if model.text_bias is not None and trained.any():
        text_mean = float(model.text_output()[1][trained].mean())
    default = ColdPlacement(mean_bias=mean_bias, text_bias_mean=text_mean)
    emb = model.items
    n_trained = int(trained.sum())
    if (valid is None or len(valid) == 0 or emb.proj is None or model.out_table is not None
            or n_trained < MIN_ITEMS):
        return default
    was_training = model.training
    model.eval()
    try:
        rng = np.random.default_rng(SEED)
        pool = np.flatnonzero(trained.numpy())
        pseudo = torch.from_numpy(np.sort(rng.choice(pool, max(1, int(PSEUDO_COLD * len(pool))),
                                                     replace=False)))
        users = encode_sequences(model, valid.history)  # (V, D), trained model as it is
        full = model.output_table().detach()  # (N, D)
        text = _text_part(model).detach()[pseudo]  # (P, D)
        out_bias = (torch.zeros(model.n_items) if bias is None else bias.detach()).clone()
        is_pseudo = np.zeros(model.n_items, dtype=bool)
        is_pseudo[pseudo.numpy()] = True
        hits = is_pseudo[valid.targets.items]
        rows = np.flatnonzero(np.add.reduceat(hits, valid.targets.offsets[:-1])
                              * (valid.targets.lengths > 0))
        table, best = [], None
        for scale in SCALES:
            for shift in SHIFTS:
                items = full.clone()
                items[pseudo] = scale * text
                b = out_bias.clone()
                if bias is not None:
                    b[pseudo] = _cold_bias(model, pseudo, scale, shift, mean_bias, text_mean)
                elif shift != 0.0:
                    continue
                all_ = evaluate(_Fixed(users, items, b), valid, ks=(10,),
                                filter_seen=filter_seen, n_bootstrap=0).metrics["ndcg@10"]
                cold = (evaluate(_Fixed(users[rows], items, b), valid.take(rows), ks=(10,),
                                 filter_seen=filter_seen, n_bootstrap=0).metrics["ndcg@10"]
                        if len(rows) else None)
                table.append({"scale": scale, "shift": shift, "ndcg@10": float(all_),
                              "ndcg@10 pseudo-cold": None if cold is None else float(cold)})
                if best is None or all_ > best[0] + 1e-12:
                    best = (all_, scale, shift)
    finally:
        model.train(was_training)
    return ColdPlacement(best[1], best[2], mean_bias, "validation", table, text_mean)


class _Fixed:
    """A Scorer from fixed user vectors (one per case, in case order: ``evaluate`` scores
    the cases in order), item vectors and biases."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor, bias: torch.Tensor) -> None:
        self.users, self.items, self.bias = users, items, bias
        self._at = 0

    def score(self, users: np.ndarray, histories) -> np.ndarray:
        h = self.users[self._at: self._at + len(users)]  # (B, D)
        self._at += len(users)
        return torch.addmm(self.bias, h, self.items.T).numpy()  # (B, N)
