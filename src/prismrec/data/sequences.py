"""Per-user, time-ordered item sequences stored as CSR arrays (no Python object per event)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prismrec.data.interactions import Interactions
from prismrec.data.vocab import Vocab


@dataclass(frozen=True)
class Sequences:
    """Row r holds ``items[offsets[r]:offsets[r+1]]``, oldest first, with their ``times``.

    Item values are dense item indices (``Vocab`` order). ``times`` are unix seconds, or
    positions when the data has no clock.
    """

    offsets: np.ndarray  # (R+1,) int64
    items: np.ndarray  # (E,) int64
    times: np.ndarray  # (E,) float64

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0:
            raise ValueError("offsets must be a 1-d array starting at 0")
        if self.offsets[-1] != len(self.items) or len(self.items) != len(self.times):
            raise ValueError("offsets, items and times disagree in length")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])

    def row(self, r: int) -> np.ndarray:
        return self.items[self.offsets[r] : self.offsets[r + 1]]

    def row_times(self, r: int) -> np.ndarray:
        return self.times[self.offsets[r] : self.offsets[r + 1]]

    def row_ids(self) -> np.ndarray:
        """The row of every event, (E,)."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def positions(self) -> np.ndarray:
        """Position of every event within its row, (E,)."""
        return np.arange(self.n_events) - np.repeat(self.offsets[:-1], self.lengths)

    @classmethod
    def from_lists(cls, rows, times=None) -> Sequences:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = (np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
                 if len(rows) and offsets[-1] else np.empty(0, np.int64))
        if times is None:
            t = (np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)).astype(np.float64)
        else:
            t = (np.concatenate([np.asarray(x, dtype=np.float64) for x in times])
                 if offsets[-1] else np.empty(0, np.float64))
        return cls(offsets, items, t)

    @classmethod
    def from_arrays(cls, rows: np.ndarray, items: np.ndarray, times: np.ndarray,
                    n_rows: int) -> Sequences:
        """From parallel event arrays; order within a row is by time, ties by input order."""
        order = np.lexsort((times, rows))
        counts = np.bincount(rows, minlength=n_rows)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(offsets, np.asarray(items, np.int64)[order],
                   np.asarray(times, np.float64)[order])

    @classmethod
    def from_interactions(cls, inter: Interactions, users: Vocab, items: Vocab) -> Sequences:
        """One row per user in ``users`` order. Ids missing from a vocabulary are added to it."""
        u = users.add(inter.frame["user"].to_numpy())
        i = items.add(inter.frame["item"].to_numpy())
        return cls.from_arrays(u, i, inter.frame["timestamp"].to_numpy(), len(users))

    def shuffle_ties(self, seed: int = 0) -> Sequences:
        """Events with equal time in the same row put in a seeded random order.

        Ties in time otherwise keep the input order (often the file's sort by item id);
        comparing a model on both orders shows how much of its score that order gives it.
        """
        rng = np.random.default_rng(seed)
        rows = self.row_ids()
        order = np.lexsort((rng.random(self.n_events), self.times, rows))
        return Sequences(self.offsets.copy(), self.items[order], self.times[order])

    def tied_with_previous(self) -> np.ndarray:
        """(E,) bool: the event has the same time as the one before it in its row."""
        tied = np.zeros(self.n_events, dtype=bool)
        if self.n_events > 1:
            tied[1:] = (self.times[1:] == self.times[:-1]) & (self.positions()[1:] > 0)
        return tied

    def to_lists(self) -> list[list[int]]:
        return [self.row(r).tolist() for r in range(len(self))]

    def take(self, rows: np.ndarray) -> Sequences:
        """A new Sequences with the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        idx = np.repeat(self.offsets[rows], lengths) + (
            np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths))
        return Sequences(offsets, self.items[idx], self.times[idx])

    def mask(self, keep: np.ndarray) -> Sequences:
        """Drop the events where ``keep`` is False; rows stay (possibly empty)."""
        keep = np.asarray(keep, dtype=bool)
        counts = np.bincount(self.row_ids()[keep], minlength=len(self))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Sequences(offsets, self.items[keep], self.times[keep])

    def head(self, n: np.ndarray | int) -> Sequences:
        """The first ``n`` events of every row (per-row array or one number)."""
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), (len(self),))
        return self.mask(self.positions() < np.repeat(n, self.lengths))

    def drop_last(self, n: int = 1) -> Sequences:
        return self.head(np.maximum(self.lengths - n, 0))

    def last(self, n: int) -> Sequences:
        """The last ``n`` events of every row (a model's window)."""
        pos = self.positions()
        return self.mask(pos >= np.repeat(self.lengths - n, self.lengths))

    def nth_from_end(self, k: int) -> np.ndarray:
        """Item k places from the end of every row (k=1 is the last); rows must be long enough."""
        if (self.lengths < k).any():
            raise ValueError(f"some rows have fewer than {k} events")
        return self.items[self.offsets[1:] - k]

    def concat_rows(self, other: Sequences) -> Sequences:
        """Row r of ``other`` appended to row r of self (same row count)."""
        if len(other) != len(self):
            raise ValueError("row counts differ")
        rows = np.concatenate([self.row_ids(), other.row_ids()])
        items = np.concatenate([self.items, other.items])
        order = np.argsort(rows, kind="stable")
        counts = self.lengths + other.lengths
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        times = np.concatenate([self.times, other.times])
        return Sequences(offsets, items[order], times[order])
