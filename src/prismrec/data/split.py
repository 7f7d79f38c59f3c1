"""Evaluation splits: leave-one-out, global temporal, and pre-split benchmark files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prismrec.data.sequences import Sequences


@dataclass(frozen=True)
class EvalCases:
    """What a model sees and what it must predict, one case per row.

    ``history`` row r is everything before the targets of case r; the targets and anything
    after them are never part of it. ``targets`` row r is one item (leave-one-out) or the set
    of items the user interacted with after the cut (temporal split).
    """

    users: np.ndarray  # (n,) user index
    history: Sequences  # n rows
    targets: Sequences  # n rows, each non-empty

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> EvalCases:
        return EvalCases(self.users[rows], self.history.take(rows), self.targets.take(rows))

    def tied_share(self) -> float:
        """Share of cases whose first target has the time of the last history event.

        For those cases the order between that event and the target came from the input
        (the file), not from the clock. 0.0 when there are no cases.
        """
        if len(self) == 0:
            return 0.0
        last = self.history.times[self.history.offsets[1:] - 1]  # (n,) histories non-empty
        first = self.targets.times[self.targets.offsets[:-1]]  # (n,)
        return float(np.mean(first == last))


@dataclass(frozen=True)
class Split:
    """Training sequences (one row per user index) plus validation and test cases."""

    name: str
    train: Sequences
    valid: EvalCases
    test: EvalCases

    def train_and_valid(self) -> Sequences:
        """Training rows where each validation case's user gets its history and targets
        instead: what to retrain on once validation has chosen the settings (``refit``).

        The targets join in time order after the history; the test cases are untouched.
        """
        rows = [self.train.row(r) for r in range(len(self.train))]
        times = [self.train.row_times(r) for r in range(len(self.train))]
        v = self.valid
        for j, user in enumerate(v.users):
            rows[user] = np.concatenate([v.history.row(j), v.targets.row(j)])
            times[user] = np.concatenate([v.history.row_times(j), v.targets.row_times(j)])
        return Sequences.from_lists(rows, times)


def _cases(users: np.ndarray, history: Sequences, targets: Sequences) -> EvalCases:
    keep = (targets.lengths > 0) & (history.lengths > 0)
    rows = np.flatnonzero(keep)
    return EvalCases(users[rows], history.take(rows), targets.take(rows))


def leave_one_out(seqs: Sequences) -> Split:
    """Last event → test, second-to-last → validation, the rest → training.

    Users with fewer than 3 events keep all they have for training and are not evaluated.
    """
    n = seqs.lengths
    users = np.arange(len(seqs))
    ok = n >= 3
    train = seqs.head(np.where(ok, n - 2, n))
    pos = seqs.positions()
    rep = np.repeat(n, n)
    repok = np.repeat(ok, n)
    valid = _cases(users, seqs.head(np.where(ok, n - 2, 0)), seqs.mask(repok & (pos == rep - 2)))
    test = _cases(users, seqs.head(np.where(ok, n - 1, 0)), seqs.mask(repok & (pos == rep - 1)))
    return Split("loo", train, valid, test)


def temporal(seqs: Sequences, test_start: float, valid_start: float | None = None) -> Split:
    """Global time split: train on events before ``valid_start`` (or ``test_start``).

    Validation cases predict the events in [valid_start, test_start) from the history before
    valid_start; test cases predict the events at or after test_start from everything before it.
    No event at or after a case's cut-off reaches its history.
    """
    if valid_start is None:
        valid_start = test_start
    if valid_start > test_start:
        raise ValueError("valid_start must not be after test_start")
    users = np.arange(len(seqs))
    t = seqs.times
    train = seqs.mask(t < valid_start)
    valid = _cases(users, train, seqs.mask((t >= valid_start) & (t < test_start)))
    test = _cases(users, seqs.mask(t < test_start), seqs.mask(t >= test_start))
    return Split("temporal", train, valid, test)


def temporal_quantile(seqs: Sequences, test_frac: float = 0.1, valid_frac: float = 0.1) -> Split:
    """Temporal split with cut-offs at time quantiles: the last ``test_frac`` of events is test."""
    if not (0 < test_frac < 1 and 0 <= valid_frac < 1 and test_frac + valid_frac < 1):
        raise ValueError("test_frac and valid_frac must be in (0, 1) and sum below 1")
    t_test = float(np.quantile(seqs.times, 1 - test_frac))
    t_valid = float(np.quantile(seqs.times, 1 - test_frac - valid_frac))
    return temporal(seqs, t_test, t_valid)
