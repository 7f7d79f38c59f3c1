"""k-core, repeat removal and minimum history length on small event tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prismrec.data import Interactions, dedupe, k_core
from prismrec.data.filters import min_user_events


def events(triples) -> Interactions:
    u, i, t = zip(*triples, strict=True)
    return Interactions.from_frame(pd.DataFrame({"user": u, "item": i, "timestamp": t}))


def pairs(inter: Interactions) -> list[tuple[str, str]]:
    return list(zip(inter.frame["user"], inter.frame["item"], strict=True))


def test_k_core_repeats_until_stable():
    # a chain that unravels one step at a time, plus a dense 2x2 block that survives
    chain = [("a", "1", 0), ("a", "2", 1), ("b", "2", 2), ("b", "3", 3), ("c", "3", 4)]
    block = [("x", "8", 5), ("x", "9", 6), ("y", "8", 7), ("y", "9", 8)]
    out = k_core(events(chain + block), 2)
    assert pairs(out) == [("x", "8"), ("x", "9"), ("y", "8"), ("y", "9")]


def test_k_core_result_meets_both_thresholds():
    rng = np.random.default_rng(0)
    trip = [(f"u{u}", f"i{i}", t) for t, (u, i) in
            enumerate(zip(rng.integers(0, 60, 800), rng.zipf(1.6, 800) % 90, strict=True))]
    out = k_core(events(trip), 5, item_k=3)
    assert len(out) > 0
    assert out.frame["user"].value_counts().min() >= 5
    assert out.frame["item"].value_counts().min() >= 3


def test_k_core_separate_user_and_item_thresholds():
    inter = events([("a", "1", 0), ("a", "2", 1), ("b", "1", 2)])
    assert pairs(k_core(inter, 1, user_k=2)) == [("a", "1"), ("a", "2")]
    assert pairs(k_core(inter, 1, item_k=2)) == [("a", "1"), ("b", "1")]


def test_k_core_keeps_input_order_and_columns():
    inter = events([("b", "1", 5), ("a", "1", 1), ("b", "2", 0), ("a", "2", 3)])
    out = k_core(inter, 2)
    assert out.frame["timestamp"].tolist() == [5.0, 1.0, 0.0, 3.0]


def test_dedupe_consecutive_only_collapses_streaks_in_time_order():
    # rows are not in time order: by time, user a plays 1, 1, 2, 1
    inter = events([("a", "1", 30), ("a", "1", 10), ("a", "2", 20), ("a", "1", 11),
                    ("b", "1", 12)])
    out = dedupe(inter)
    assert sorted(out.frame["timestamp"].tolist()) == [10.0, 12.0, 20.0, 30.0]


def test_dedupe_timestamp_ties_use_input_order():
    inter = events([("a", "1", 0), ("a", "2", 0), ("a", "1", 0)])
    assert len(dedupe(inter)) == 3  # 1, 2, 1: nothing is an immediate repeat
    assert pairs(dedupe(inter, consecutive_only=False)) == [("a", "1"), ("a", "2")]


def test_dedupe_all_keeps_each_pairs_earliest_event():
    inter = events([("a", "1", 30), ("a", "1", 10), ("a", "2", 20), ("b", "1", 5)])
    out = dedupe(inter, consecutive_only=False)
    assert list(zip(out.frame["user"], out.frame["item"], out.frame["timestamp"], strict=True)) \
        == [("a", "1", 10.0), ("a", "2", 20.0), ("b", "1", 5.0)]


def test_min_user_events_does_not_filter_items():
    inter = events([("a", "1", 0), ("a", "2", 1), ("b", "1", 2)])
    assert pairs(min_user_events(inter, 2)) == [("a", "1"), ("a", "2")]
