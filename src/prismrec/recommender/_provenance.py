"""How a Recommender was trained: which of each user's known events it learned from.

A fitted recommender keeps two things apart:

- ``histories_``: every user's full known history (all events of the data given to ``fit`` /
  ``fit_split``, plus streamed events). Recommendations, seen-item filtering, profiles and
  live profiles start from it.
- ``training_`` (a ``TrainingRecord``): the split's name, a hash of the full histories at fit
  time, and per user how many leading events of that history the model trained on
  (``train_cut``) and how many training plus model selection (early stopping, the blend's
  choice) read (``select_cut``).

``unseen_cases`` uses the record to tell which evaluation cases predict events the model
never trained on nor selected with: only those may be scored as a test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split


def history_sha256(seqs: Sequences) -> str:
    """SHA-256 over a Sequences' offsets, items and times (the data a record refers to)."""
    h = hashlib.sha256()
    for arr in (seqs.offsets, seqs.items, seqs.times):
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class TrainingRecord:
    """What a model learned from, per user, as cuts into the full histories (see module)."""

    split: str  # "loo", "temporal", "given"; "holdout_last" (fit), "all" (fit, valid=False)
    data_sha256: str  # history_sha256 of the full histories at fit time
    train_cut: np.ndarray  # (n_users,) int64 leading events trained on
    select_cut: np.ndarray  # (n_users,) int64 leading events training + selection read
    refit: bool = False

    def to_meta(self) -> dict:
        return {"split": self.split, "data_sha256": self.data_sha256, "refit": self.refit}

    @classmethod
    def from_meta(cls, meta: dict, train_cut: np.ndarray, select_cut: np.ndarray
                  ) -> TrainingRecord:
        if not isinstance(meta.get("split"), str) or not isinstance(meta.get("data_sha256"),
                                                                    str):
            raise ValueError("the training record needs a split name and a data hash")
        if train_cut.shape != select_cut.shape or train_cut.ndim != 1:
            raise ValueError("the training cuts must be two arrays of one length")
        return cls(meta["split"], meta["data_sha256"], train_cut.astype(np.int64),
                   select_cut.astype(np.int64), bool(meta.get("refit", False)))


def _prefix_length(full: Sequences, rows: np.ndarray, part: Sequences) -> np.ndarray:
    """Per row j of ``part`` (user ``rows[j]``): its length if it is a prefix of that user's
    full history, else -1."""
    out = np.full(len(part), -1, dtype=np.int64)
    for j, r in enumerate(rows):
        p, f = part.row(j), full.row(int(r))
        if len(p) <= len(f) and np.array_equal(f[: len(p)], p):
            out[j] = len(p)
    return out


def _joined(cases: EvalCases) -> Sequences:
    """Each case's history followed by its targets."""
    return Sequences.from_lists(
        [np.concatenate([cases.history.row(j), cases.targets.row(j)]) for j in range(len(cases))],
        [np.concatenate([cases.history.row_times(j), cases.targets.row_times(j)])
         for j in range(len(cases))])


def case_positions(full: Sequences, cases: EvalCases) -> np.ndarray:
    """Per case, where in its user's full history its targets begin (a lower bound).

    Exact when the history followed by the targets is a prefix of the full history
    (leave-one-out, temporal splits): the history's length. Otherwise (a benchmark's
    skip-one or windowed histories) the number of the user's events strictly older than
    the first target: everything before the target, so never past it.
    """
    exact = _prefix_length(full, cases.users, _joined(cases))
    pos = np.where(exact >= 0, cases.history.lengths, 0)
    for j in np.flatnonzero(exact < 0):
        first = float(cases.targets.row_times(j).min())
        pos[j] = int(np.searchsorted(full.row_times(int(cases.users[j])), first, "left"))
    return pos


def _case_ends(full: Sequences, cases: EvalCases) -> np.ndarray:
    """Per case, the position just past its targets (an upper bound): exact when history and
    targets are a prefix of the full history, else the number of the user's events no later
    than the last target (events tied in time with it count as read)."""
    end = _prefix_length(full, cases.users, _joined(cases))
    for j in np.flatnonzero(end < 0):
        last = float(cases.targets.row_times(j).max())
        end[j] = int(np.searchsorted(full.row_times(int(cases.users[j])), last, "right"))
    return end


def _cuts(full: Sequences, train: Sequences, valid: EvalCases | None
          ) -> tuple[np.ndarray, np.ndarray]:
    users = np.arange(len(full))
    train_cut = _prefix_length(full, users[: len(train)], train)
    # a training row that is not a prefix of the full history: count the whole history as
    # trained on (its cases can then never be scored as unseen), the safe side
    train_cut = np.where(train_cut < 0, full.lengths[: len(train)], train_cut)
    if len(train) < len(full):
        train_cut = np.concatenate([train_cut, np.zeros(len(full) - len(train), np.int64)])
    select_cut = train_cut.copy()
    if valid is not None and len(valid):
        np.maximum.at(select_cut, valid.users, _case_ends(full, valid))
    return train_cut, np.minimum(select_cut, full.lengths)


def record(split_name: str, full: Sequences, train: Sequences, valid: EvalCases | None,
           refit: bool) -> TrainingRecord:
    """The record of a model trained on ``train`` (rows per user index) and selected on
    ``valid``; with ``refit`` the final model also trained on the validation events."""
    train_cut, select_cut = _cuts(full, train, valid)
    if refit:
        train_cut = select_cut.copy()
    return TrainingRecord(split_name, history_sha256(full), train_cut, select_cut, refit)


def known_histories(split: Split) -> Sequences:
    """Each user's longest history the split knows: the test case's history and targets,
    else the validation case's, else the training row (what ``fit_split`` keeps when it is
    not given the full histories)."""
    rows = [split.train.row(r) for r in range(len(split.train))]
    times = [split.train.row_times(r) for r in range(len(split.train))]
    for cases in (split.valid, split.test):
        for j, u in enumerate(cases.users):
            items = np.concatenate([cases.history.row(j), cases.targets.row(j)])
            if len(items) >= len(rows[u]):
                rows[u] = items
                times[u] = np.concatenate([cases.history.row_times(j),
                                           cases.targets.row_times(j)])
    return Sequences.from_lists(rows, times)


@dataclass(frozen=True)
class UnseenCases:
    """The cases of an evaluation that the model neither trained on nor selected with."""

    cases: EvalCases
    total: int  # cases before the check
    reason: str  # why the others were left out ("" when none were)


def unseen_cases(rec_record: TrainingRecord | None, full: Sequences,
                 cases: EvalCases) -> UnseenCases:
    """The cases of ``cases`` whose targets begin at or after the user's selection cut.

    ``full`` are the full histories of the data being evaluated; they must be the ones the
    record was made from (same hash), or no case can be vouched for and none is kept.
    """
    if rec_record is None:
        return UnseenCases(cases.take(np.zeros(0, np.int64)), len(cases),
                           "the checkpoint does not record which events it trained on "
                           "(saved by an older prismrec)")
    if history_sha256(full) != rec_record.data_sha256:
        return UnseenCases(cases.take(np.zeros(0, np.int64)), len(cases),
                           "the data differs from the data the checkpoint was trained on, so "
                           "which of its events the model saw is unknown")
    if len(rec_record.select_cut) != len(full):
        return UnseenCases(cases.take(np.zeros(0, np.int64)), len(cases),
                           "the checkpoint's training record does not match the data's users")
    pos = case_positions(full, cases)
    keep = np.flatnonzero(pos >= rec_record.select_cut[cases.users])
    reason = "" if len(keep) == len(cases) else (
        f"{len(cases) - len(keep)} of {len(cases)} cases predict events the model trained "
        f"on or used for model selection (it was trained with the {rec_record.split!r} "
        f"split{', refit on train + validation' if rec_record.refit else ''})")
    return UnseenCases(cases.take(keep), len(cases), reason)
