"""Lazy Parquet scan: the same sequences and vocabularies as the eager reader, in batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prismrec.data import Dataset, Vocab, read_events
from prismrec.data.scan import group_by_row, radix_argsort, scan_events
from prismrec.errors import DataError


def write_log(path, frame: pd.DataFrame, row_group_size: int = 7) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=row_group_size)


def messy_log(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Users interleaved, times out of order within users and tied, ids as strings."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "uid": [f"u{x}" for x in rng.integers(0, 37, n)],
        "iid": [f"i{x}" for x in rng.integers(0, 50, n)],
        "ts": rng.integers(0, 60, n).astype(np.int64),  # many ties
    })


def assert_same(scanned: Dataset, eager: Dataset) -> None:
    assert scanned.users.to_list() == eager.users.to_list()
    assert scanned.items.to_list() == eager.items.to_list()
    np.testing.assert_array_equal(scanned.sequences.offsets, eager.sequences.offsets)
    np.testing.assert_array_equal(scanned.sequences.items, eager.sequences.items)
    np.testing.assert_array_equal(scanned.sequences.times, eager.sequences.times)


@pytest.mark.parametrize("batch_rows", [5, 64, 1 << 20])  # batches end inside users' events
def test_scan_equals_the_eager_reader(tmp_path, batch_rows):
    path = tmp_path / "events.parquet"
    write_log(path, messy_log())
    eager = Dataset.from_interactions("x", read_events(path, user="uid", item="iid",
                                                       timestamp="ts"))
    scanned = scan_events(path, user="uid", item="iid", timestamp="ts", batch_rows=batch_rows)
    assert_same(scanned, eager)
    assert scanned.sequences.n_events == 400 and scanned.has_time


def test_integer_ids_and_datetime_times_read_like_the_eager_reader(tmp_path):
    f = messy_log(seed=1)
    f = pd.DataFrame({"user": f["uid"].str[1:].astype(np.int64) * 1000,
                      "item": f["iid"].str[1:].astype(np.int64),
                      "timestamp": pd.to_datetime(f["ts"] * 3600, unit="s")})
    path = tmp_path / "events.parquet"
    write_log(path, f)
    assert_same(scan_events(path, batch_rows=9), Dataset.from_interactions("x", read_events(path)))


def test_without_a_clock_file_order_is_time_order(tmp_path):
    path = tmp_path / "events.parquet"
    write_log(path, messy_log(seed=2))
    eager = Dataset.from_interactions(
        "x", read_events(path, user="uid", item="iid", timestamp=None))
    scanned = scan_events(path, user="uid", item="iid", timestamp=None, batch_rows=11)
    assert_same(scanned, eager)
    assert not scanned.has_time


def test_a_given_item_vocabulary_keeps_its_indices(tmp_path):
    path = tmp_path / "events.parquet"
    write_log(path, pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "z", "x"],
                                  "timestamp": [1, 2, 3]}))
    items = Vocab(["z", "y", "x"])
    data = scan_events(path, items=items)
    assert data.items is items and items.to_list() == ["z", "y", "x"]
    assert data.sequences.to_lists() == [[2, 0], [2]]


def test_radix_argsort_is_a_stable_sort_past_16_bits():
    keys = np.random.default_rng(0).integers(0, 200_000, 5000)
    np.testing.assert_array_equal(radix_argsort(keys, 200_000), np.argsort(keys, kind="stable"))


def test_grouping_sorts_by_time_only_within_rows_and_keeps_ties_in_order():
    rows = np.array([1, 0, 1, 0, 1])
    times = np.array([5.0, 2.0, 3.0, 2.0, 5.0])
    assert group_by_row(rows, times, 2).tolist() == [1, 3, 2, 0, 4]


def test_a_file_that_is_not_parquet_is_a_data_error_naming_it(tmp_path):
    path = tmp_path / "events.parquet"
    path.write_text("user,item,timestamp\nu1,i1,1\n")
    with pytest.raises(DataError, match="events.parquet"):
        scan_events(path)


def test_a_missing_column_is_named_with_the_columns_present(tmp_path):
    path = tmp_path / "events.parquet"
    write_log(path, messy_log(n=10))
    with pytest.raises(DataError, match=r"user column 'user'.*uid, iid, ts"):
        scan_events(path, item="iid", timestamp="ts")


def test_a_missing_id_names_the_file_and_row(tmp_path):
    path = tmp_path / "events.parquet"
    write_log(path, pd.DataFrame({"user": ["a", "b", None, "c"], "item": ["x"] * 4,
                                  "timestamp": [1, 2, 3, 4]}), row_group_size=2)
    with pytest.raises(DataError, match=r"events.parquet: row 3: missing user id"):
        scan_events(path, batch_rows=2)


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        scan_events(tmp_path / "nope.parquet")
