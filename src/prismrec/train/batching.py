"""From CSR sequences to padded training batches, without a Python loop per event.

A training *sample* is a run of consecutive events of one user: inputs are events
``s..s+n-1`` and targets the events one step later (next-item prediction at every position).
Recurrent models get one sample per user (the whole history, cut into truncated-BPTT chunks
by the trainer); windowed models (SASRec) get the last ``max_windows`` windows of
``max_len`` inputs, counted back from the end of each history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from prismrec.data.sequences import Sequences

POOL_BATCHES = 50  # length-sorting pool: big enough to cut padding, small enough to shuffle


def event_gaps(seqs: Sequences) -> np.ndarray:
    """Seconds since the previous event of the same row, (E,); -1 at each row's first event."""
    gaps = np.empty(seqs.n_events, dtype=np.float64)
    if seqs.n_events:
        gaps[1:] = np.diff(seqs.times)
        starts = seqs.offsets[:-1][seqs.lengths > 0]
        gaps[starts] = -1.0
    return gaps


def gather_padded(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, t: int,
                  fill=0) -> np.ndarray:
    """Rows ``values[s:s+n]`` start-aligned in a (B, t) array, ``fill`` after each row's end."""
    pos = np.arange(t)[None, :]  # (1, t)
    mask = pos < lengths[:, None]  # (B, t)
    idx = np.where(mask, starts[:, None] + pos, 0)  # (B, t)
    out = values[idx] if len(values) else np.zeros(idx.shape, dtype=values.dtype)
    return np.where(mask, out, fill)


def length_batches(seqs: Sequences, gaps: np.ndarray | None, batch_events: int
                   ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor,
                                       torch.Tensor | None]]:
    """Whole rows for inference, longest first, each batch capped at ``batch_events`` padded
    events: (row indices, items (B, T), lengths (B,), gaps (B, T) or None) per batch."""
    lengths = seqs.lengths
    order = np.argsort(-lengths, kind="stable")
    i = 0
    while i < len(order):
        t = max(int(lengths[order[i]]), 1)
        rows = order[i:i + max(1, batch_events // t)]
        i += len(rows)
        starts, lens = seqs.offsets[rows], lengths[rows]
        x = torch.from_numpy(gather_padded(seqs.items, starts, lens, t))
        g = None if gaps is None else torch.from_numpy(
            gather_padded(gaps, starts, lens, t, fill=-1.0))
        yield rows, x, torch.from_numpy(lens), g


def recent_inputs(inputs: torch.Tensor, window: int) -> torch.Tensor:
    """(B, T) inputs → (B, T, window): each position's last ``window`` inputs, itself
    included, -1 where the row has fewer (padding positions are ignored by the caller)."""
    pad = inputs.new_full((inputs.shape[0], window - 1), -1)
    return torch.cat([pad, inputs], dim=1).unfold(1, window, 1)  # (B, T, window)


@dataclass
class Batch:
    """Padded training batch, rows sorted by length (longest first)."""

    inputs: torch.Tensor  # (B, T) int64 item indices
    targets: torch.Tensor  # (B, T) int64 next items, or (B, T, K) the next K (-1: none)
    gaps: torch.Tensor | None  # (B, T) float64 seconds since the previous event
    lengths: torch.Tensor  # (B,) int64

    @property
    def n_events(self) -> int:
        return int(self.lengths.sum())

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device`` (itself when it is there already)."""
        if self.inputs.device == device:
            return self
        return Batch(self.inputs.to(device), self.targets.to(device),
                     None if self.gaps is None else self.gaps.to(device),
                     self.lengths.to(device))


class TrainBatches:
    """Samples of a training set and their batches for one epoch at a time."""

    def __init__(self, seqs: Sequences, *, batch_size: int, windowed: bool,
                 max_len: int | None, max_windows: int = 1, with_gaps: bool = False,
                 future: int = 1) -> None:
        if future < 1:
            raise ValueError(f"future must be at least 1, got {future}")
        self.seqs, self.batch_size, self.windowed = seqs, batch_size, windowed
        self.future = future
        self.gaps = event_gaps(seqs) if with_gaps else None
        n_in = np.maximum(seqs.lengths - 1, 0)  # predictions each user offers
        end = seqs.offsets[:-1] + n_in  # exclusive end of each user's inputs
        if windowed:
            if max_len is None:
                raise ValueError("a windowed model needs max_len")
            n_win = -(-n_in // max_len)  # ceil
            if max_windows:
                n_win = np.minimum(n_win, max_windows)
            user = np.repeat(np.arange(len(seqs)), n_win)
            w = np.arange(n_win.sum()) - np.repeat(np.cumsum(n_win) - n_win, n_win)
            stop = end[user] - w * max_len
            start = np.maximum(seqs.offsets[:-1][user], stop - max_len)
            row_end = seqs.offsets[1:][user]
        else:
            keep = n_in > 0
            stop = end[keep]
            n = n_in[keep] if max_len is None else np.minimum(n_in[keep], max_len)
            start = stop - n
            row_end = seqs.offsets[1:][keep]
        self.starts = start.astype(np.int64)
        self.row_ends = row_end.astype(np.int64)  # exclusive end of each sample's user
        self.lengths = (stop - start).astype(np.int64)
        if len(self.starts) == 0:
            raise ValueError("no training samples: every user has fewer than 2 events")

    @property
    def n_events(self) -> int:
        """Predictions per epoch."""
        return int(self.lengths.sum())

    def __len__(self) -> int:
        return -(-len(self.starts) // self.batch_size)

    def order(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Sample indices per batch: shuffled, and length-sorted within pools to cut padding."""
        perm = rng.permutation(len(self.starts))
        pool = self.batch_size * POOL_BATCHES
        batches = []
        for p in range(0, len(perm), pool):
            part = perm[p:p + pool]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def batch(self, idx: np.ndarray) -> Batch:
        idx = idx[np.argsort(-self.lengths[idx], kind="stable")]
        starts, lengths = self.starts[idx], self.lengths[idx]
        t = int(lengths.max())
        items = self.seqs.items
        x = gather_padded(items, starts, lengths, t)
        if self.future == 1:
            y = gather_padded(items, starts + 1, lengths, t)  # (B, T)
        else:  # (B, T, K): the next K items of each position, -1 past the user's last event
            ahead = starts[:, None, None] + 1 + np.arange(t)[None, :, None] + np.arange(
                self.future)[None, None, :]  # (B, T, K)
            ok = (np.arange(t)[None, :, None] < lengths[:, None, None]) & (
                ahead < self.row_ends[idx][:, None, None])
            y = np.where(ok, items[np.where(ok, ahead, 0)], -1)
        g = None if self.gaps is None else torch.from_numpy(
            gather_padded(self.gaps, starts, lengths, t, fill=-1.0))
        return Batch(torch.from_numpy(x), torch.from_numpy(y), g, torch.from_numpy(lengths))

    def epoch(self, rng: np.random.Generator) -> Iterator[Batch]:
        for idx in self.order(rng):
            yield self.batch(idx)
