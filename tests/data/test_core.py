"""Vocab, Sequences and the splits: ordering rules and the no-leakage guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prismrec.data import Dataset, Interactions, Sequences, Vocab, leave_one_out, temporal
from prismrec.errors import UnknownIdError


def dataset(triples) -> Dataset:
    u, i, t = zip(*triples, strict=True)
    inter = Interactions.from_frame(pd.DataFrame({"user": u, "item": i, "timestamp": t}))
    return Dataset.from_interactions("t", inter)


def test_vocab_spells_integer_floats_like_integers():
    v = Vocab([42, "7"])
    assert v.index([42.0, "42", 7]).tolist() == [0, 0, 1]
    with pytest.raises(UnknownIdError, match="'8'"):
        v.index_of(8)


def test_sequences_are_time_ordered_with_ties_in_input_order():
    ds = dataset([("a", "x", 5), ("a", "y", 1), ("a", "z", 5), ("a", "w", 5)])
    assert ds.items.ids(ds.sequences.row(0)) == ["y", "x", "z", "w"]


def test_leave_one_out_last_to_test_second_to_last_to_valid():
    seqs = Sequences.from_lists([[0, 1, 2, 3], [4, 5], [6, 7, 8]])
    s = leave_one_out(seqs)
    assert s.train.to_lists() == [[0, 1], [4, 5], [6]]
    assert s.valid.users.tolist() == [0, 2]
    assert s.valid.history.to_lists() == [[0, 1], [6]]
    assert s.valid.targets.to_lists() == [[2], [7]]
    assert s.test.history.to_lists() == [[0, 1, 2], [6, 7]]
    assert s.test.targets.to_lists() == [[3], [8]]


def test_leave_one_out_with_timestamp_ties_follows_input_order():
    ds = dataset([("a", "1", 0), ("a", "2", 0), ("a", "3", 0), ("a", "4", 0)])
    s = leave_one_out(ds.sequences)
    assert ds.items.ids(s.test.targets.row(0)) == ["4"]
    assert ds.items.ids(s.valid.targets.row(0)) == ["3"]


def test_temporal_split_never_leaks_events_at_or_after_the_cut():
    rng = np.random.default_rng(1)
    n = 3000
    trip = list(zip(rng.integers(0, 80, n).astype(str), rng.integers(0, 50, n).astype(str),
                    rng.integers(0, 100, n), strict=True))
    seqs = dataset(trip).sequences
    valid_start, test_start = 70.0, 85.0
    s = temporal(seqs, test_start, valid_start)
    assert s.train.times.max() < valid_start
    assert s.valid.history.times.max() < valid_start
    assert s.valid.targets.times.min() >= valid_start and s.valid.targets.times.max() < test_start
    assert s.test.history.times.max() < test_start
    assert s.test.targets.times.min() >= test_start
    # every event is accounted for: test history + test targets = the user's whole sequence
    users = s.test.users
    assert (s.test.history.lengths + s.test.targets.lengths
            == seqs.lengths[users]).all()


def test_temporal_split_cut_exactly_at_an_event_time_puts_it_in_test():
    seqs = Sequences.from_lists([[0, 1, 2]], times=[[1.0, 2.0, 3.0]])
    s = temporal(seqs, test_start=2.0)
    assert s.test.history.to_lists() == [[0]] and s.test.targets.to_lists() == [[1, 2]]
