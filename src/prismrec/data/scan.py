"""Events from Parquet at scale: read lazily in record batches, straight into CSR sequences.

``read_events`` builds a pandas frame with one Python string per id, which is the right
tool for a messy CSV but costs gigabytes at tens of millions of events. ``scan_events``
reads only the id and time columns of a Parquet file (or a folder of them) batch by batch
with ``pyarrow.dataset``; each batch's ids are dictionary-encoded by Arrow and only the
*distinct* ids of a batch touch Python, to be looked up in (or added to) the vocabularies.
Per batch it keeps three flat arrays (user index, item index, seconds); at the end they are
concatenated once and grouped by user with a stable radix (counting) sort on 16-bit digits,
and only rows whose events are out of time order get a stable time sort. The result equals
``Dataset.from_interactions(read_events(path))`` for the same file: vocabularies in
first-seen order, events by time within a user, ties in file order.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data.dataset import Dataset
from prismrec.data.sequences import Sequences
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError

log = logging.getLogger(__name__)

BATCH_ROWS = 1 << 20  # rows per record batch: ~24 MB of working arrays per batch


class _IdMap:
    """Raw id values → vocabulary indices. Arrow hashes every value (dictionary-encode the
    batch, look its distinct values up among those seen so far); only ids never seen before
    become Python strings, once per scan, to enter the ``Vocab``."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.known = None  # pyarrow Array of the distinct raw values seen, in index order
        self.index = np.empty(0, dtype=np.int64)  # their vocabulary indices

    def __call__(self, column) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        enc = pc.dictionary_encode(column)
        uniq = enc.dictionary  # distinct ids of this batch, first-seen order
        codes = enc.indices.to_numpy(zero_copy_only=False)  # (rows,)
        if self.known is None:
            pos = np.full(len(uniq), -1, dtype=np.int64)
        else:
            uniq = uniq.cast(self.known.type)
            pos = pc.fill_null(pc.index_in(uniq, value_set=self.known), -1).to_numpy(
                zero_copy_only=False).astype(np.int64)
        new = pos < 0
        if new.any():
            fresh = uniq.filter(pa.array(new))
            start = len(self.index)
            self.index = np.concatenate(
                [self.index, self.vocab.add(fresh.to_numpy(zero_copy_only=False))])
            self.known = fresh if self.known is None else pa.concat_arrays([self.known, fresh])
            pos[new] = np.arange(start, start + len(fresh))
        return self.index[pos][codes].astype(self.dtype)

    @property
    def dtype(self):
        return np.int32 if len(self.index) < 2**31 - 1 else np.int64


def _seconds(column, path: Path, name: str, row0: int) -> np.ndarray:
    """Unix seconds (float64) from a numeric, timestamp or date-text Arrow column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_timestamp(t):
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[t.unit]
        values = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False) / per_second
    elif pa.types.is_date(t):
        values = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64()).to_numpy(
            zero_copy_only=False).astype(np.float64)
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    else:  # text: the eager reader's parser (numbers or date-times)
        from prismrec.data.readers import parse_times

        values = parse_times(pd.Series(column.to_pandas()))
    bad = ~np.isfinite(values)
    if bad.any():
        row = row0 + int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: row {row + 1}: cannot use timestamp in column {name!r} "
                        "(missing or not unix seconds / a date-time); fix or drop the row")
    return np.asarray(values, dtype=np.float64)


def _check_nulls(column, path: Path, name: str, what: str, row0: int) -> None:
    if column.null_count:
        import pyarrow.compute as pc

        row = row0 + int(np.flatnonzero(pc.is_null(column).to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{path}: row {row + 1}: missing {what} id (column {name!r}); "
                        "fix or drop the row")


def radix_argsort(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable argsort of non-negative integer keys below ``n_keys``, in O(E) per 16 bits:
    numpy's stable sort of uint16 is a counting (radix) sort."""
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    shift = 16
    while n_keys > 1 << shift:
        digit = ((keys[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


def group_by_row(rows: np.ndarray, times: np.ndarray, n_rows: int) -> np.ndarray:
    """Event order grouping ``rows`` (counting sort), by time within a row, ties as given."""
    order = radix_argsort(rows, n_rows)
    r, t = rows[order], times[order]
    late = np.flatnonzero((t[1:] < t[:-1]) & (r[1:] == r[:-1]))  # out of time order
    if len(late):
        sub = np.flatnonzero(np.isin(r, np.unique(r[late + 1])))  # events of those rows
        order[sub] = order[sub][np.lexsort((t[sub], r[sub]))]  # both stable
    return order


def scan_events(path: str | Path, *, user: str = "user", item: str = "item",
                timestamp: str | None = "timestamp", users: Vocab | None = None,
                items: Vocab | None = None, name: str | None = None,
                batch_rows: int = BATCH_ROWS) -> Dataset:
    """A Dataset (sequences + vocabularies, no event frame) from a Parquet file or folder.

    Keyword arguments name the columns; ``timestamp=None`` means the file is in time order.
    Pass ``items`` (e.g. a vocabulary that starts with the catalogue's ids) or ``users`` to
    extend existing vocabularies. A file that is not Parquet, a missing column or a missing
    id or time raises ``DataError`` naming the file (and row).
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        data = pads.dataset(str(path), format="parquet")
        present = data.schema.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file or folder ({exc})") from exc
    wanted = {"user": user, "item": item, "timestamp": timestamp}
    missing = [f"{k} column {c!r}" for k, c in wanted.items() if c is not None and c not in present]
    if missing:
        raise DataError(f"{path}: no {', '.join(missing)}; columns present: "
                        f"{', '.join(present)}. Name them with user=, item=, timestamp=")
    users = Vocab() if users is None else users
    items = Vocab() if items is None else items
    user_map, item_map = _IdMap(users), _IdMap(items)
    columns = list(dict.fromkeys(c for c in wanted.values() if c is not None))
    parts: dict[str, list[np.ndarray]] = {"user": [], "item": [], "time": []}
    row0 = 0
    try:
        for batch in data.to_batches(columns=columns, batch_size=batch_rows):
            n = batch.num_rows
            if n == 0:
                continue
            u, i = batch.column(user), batch.column(item)
            _check_nulls(u, path, user, "user", row0)
            _check_nulls(i, path, item, "item", row0)
            parts["user"].append(user_map(u))
            parts["item"].append(item_map(i))
            parts["time"].append(np.arange(row0, row0 + n, dtype=np.float64) if timestamp
                                 is None else _seconds(batch.column(timestamp), path,
                                                       timestamp, row0))
            row0 += n
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read it as Parquet ({exc})") from exc
    if row0 == 0:
        raise DataError(f"{path}: no events")
    # one concatenation per field, each batch list freed as soon as it is joined
    u = np.concatenate(parts.pop("user"))
    times = np.concatenate(parts.pop("time"))
    counts = np.bincount(u, minlength=len(users))
    order = group_by_row(u, times, len(users))
    del u
    times = times[order]
    item_idx = np.concatenate(parts.pop("item"))[order]
    del order
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # without a clock, an event's time is its row number, as in Interactions.from_frame
    seqs = Sequences(offsets, item_idx.astype(np.int64, copy=False), times)
    log.info("scanned %s: %d events, %d users, %d items", path, row0, len(users), len(items))
    return Dataset(name or path.stem, seqs, users, items, has_time=timestamp is not None,
                   info={"source": str(path), "events": row0})
