"""Events from Parquet at scale: read lazily in record batches, straight into CSR sequences.

``read_events`` builds a pandas frame with one Python string per id, which is the right
tool for a messy CSV but costs gigabytes at tens of millions of events. ``scan_events``
reads only the id and time columns of a Parquet file (or a folder of them) batch by batch
with ``pyarrow.dataset``. Per batch it keeps the Arrow dictionary encoding of each id column
(int32 codes + the batch's distinct ids) and the seconds as float64; at the end Arrow
unifies the dictionaries, only the distinct ids touch Python (to enter the vocabularies),
each field is concatenated once and events are grouped by user with a stable radix
(counting) sort on 16-bit digits; only rows whose events are out of time order get a stable
time sort. The result equals
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


class _IdColumn:
    """One id column, dictionary-encoded by Arrow batch by batch; at the end Arrow unifies
    the batch dictionaries (one hash table, each batch's distinct ids inserted once, in
    first-seen order) and only the distinct ids become Python strings, to enter the
    ``Vocab`` once."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.chunks: list = []  # pyarrow DictionaryArray per batch (int32 codes)

    def add(self, column) -> None:
        import pyarrow.compute as pc

        self.chunks.append(pc.dictionary_encode(column))

    def indices(self) -> np.ndarray:
        """Vocabulary index of every event, (E,), int32 while the vocabulary allows."""
        import pyarrow as pa

        types = {c.dictionary.type for c in self.chunks}
        if len(types) > 1:  # e.g. string in one file, large_string in another
            value_type = pa.large_string() if pa.large_string() in types else types.pop()
            self.chunks = [c.cast(pa.dictionary(pa.int32(), value_type)) for c in self.chunks]
        unified = pa.chunked_array(self.chunks).unify_dictionaries()
        self.chunks = []
        ids = unified.chunk(0).dictionary.to_numpy(zero_copy_only=False)
        index = self.vocab.add(ids)  # (distinct ids,) in first-seen order
        index = index.astype(np.int32 if len(self.vocab) < 2**31 - 1 else np.int64)
        return np.concatenate([index[c.indices.to_numpy(zero_copy_only=False)]
                               for c in unified.chunks])


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
    user_ids, item_ids = _IdColumn(users), _IdColumn(items)
    columns = list(dict.fromkeys(c for c in wanted.values() if c is not None))
    times_parts: list[np.ndarray] = []
    row0 = 0
    try:
        for batch in data.to_batches(columns=columns, batch_size=batch_rows):
            n = batch.num_rows
            if n == 0:
                continue
            u, i = batch.column(user), batch.column(item)
            _check_nulls(u, path, user, "user", row0)
            _check_nulls(i, path, item, "item", row0)
            user_ids.add(u)
            item_ids.add(i)
            times_parts.append(np.arange(row0, row0 + n, dtype=np.float64) if timestamp
                                 is None else _seconds(batch.column(timestamp), path,
                                                       timestamp, row0))
            row0 += n
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read it as Parquet ({exc})") from exc
    if row0 == 0:
        raise DataError(f"{path}: no events")
    # one concatenation per field; each field's batches are freed once it is joined
    u = user_ids.indices()
    times = np.concatenate(times_parts)
    del times_parts
    counts = np.bincount(u, minlength=len(users))
    order = group_by_row(u, times, len(users))
    del u
    times = times[order]
    item_idx = item_ids.indices()[order]
    del order
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # without a clock, an event's time is its row number, as in Interactions.from_frame
    seqs = Sequences(offsets, item_idx.astype(np.int64, copy=False), times)
    log.info("scanned %s: %d events, %d users, %d items", path, row0, len(users), len(items))
    return Dataset(name or path.stem, seqs, users, items, has_time=timestamp is not None,
                   info={"source": str(path), "events": row0})
