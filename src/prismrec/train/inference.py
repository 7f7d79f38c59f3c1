"""Encode whole histories into user vectors and scores, the same way for every model.

Recurrent models read each full history (their training covers whole histories through
truncated BPTT); windowed models read the last ``model.max_len`` events. Rows are grouped
by length and batches are capped in events, so a few very long histories cost no more
memory than many short ones.

``device`` (None: where the model is) is where the forward passes and scores run; the model
is moved there for the call (``prismrec.train.device.placed``) and the result comes back on
the model's own device.
"""

from __future__ import annotations

import numpy as np
import torch

from prismrec.data.sequences import Sequences
from prismrec.models.base import SequenceEncoder
from prismrec.train.batching import event_gaps, length_batches
from prismrec.train.device import placed

BATCH_EVENTS = 131_072  # padded events per forward pass: (B*T*D) floats stay ~32 MB at D=64


def _windowed(model: SequenceEncoder, seqs: Sequences) -> tuple[Sequences, np.ndarray | None]:
    gaps = event_gaps(seqs) if model.gap_emb is not None else None
    if model.max_len is None or not (seqs.lengths > model.max_len).any():
        return seqs, gaps
    keep = seqs.positions() >= np.repeat(seqs.lengths - model.max_len, seqs.lengths)
    return seqs.mask(keep), None if gaps is None else gaps[keep]


@torch.no_grad()
def encode_sequences(model: SequenceEncoder, seqs: Sequences, *,
                     batch_events: int = BATCH_EVENTS,
                     device: torch.device | None = None) -> torch.Tensor:
    """User vector of every row, (R, D) float32, in row order; an empty row gives zeros."""
    was_training = model.training
    model.eval()
    try:
        home = next(model.parameters()).device
        with placed(model, device) as dev:
            return _encode(model, seqs, batch_events, dev).to(home)
    finally:
        model.train(was_training)


def _encode(model: SequenceEncoder, seqs: Sequences, batch_events: int,
            device: torch.device) -> torch.Tensor:
    win, gaps = _windowed(model, seqs)
    out = torch.zeros(len(win), model.dim, device=device)  # (R, D)
    for rows, x, lens, g in length_batches(win, gaps, batch_events):
        g = None if g is None else g.to(device)
        out[torch.from_numpy(rows).to(device)] = model.encode(
            x.to(device), lens.to(device), g).float()
    return out


@torch.no_grad()
def score_sequences(model: SequenceEncoder, seqs: Sequences, *,
                    device: torch.device | None = None) -> torch.Tensor:
    """Every item's score for every row, (R, N) float32."""
    was_training = model.training
    model.eval()
    try:
        home = next(model.parameters()).device
        with placed(model, device) as dev:
            return model.score_all(_encode(model, seqs, BATCH_EVENTS, dev)).to(home)
    finally:
        model.train(was_training)
