"""Your own data: a folder with an events table and, optionally, an items table.

``events.csv`` (or ``.tsv``, ``.parquet``, ``.jsonl``, gzipped or not) with columns
``user,item,timestamp`` and optionally ``event``, ``value``, ``event_id``; ``items.csv`` with
``item`` and any of ``title,description,categories,brand,tags`` (lists joined by ``|``).
This is also what ``prismrec.data.synthetic.SyntheticData.save`` writes.
"""

from __future__ import annotations

from pathlib import Path

from prismrec.data.dataset import Dataset
from prismrec.data.layouts._common import check_dir, find, optional
from prismrec.data.readers import read_catalog, read_events

_SUFFIXES = ("csv", "tsv", "parquet", "jsonl", "ndjson", "csv.gz", "tsv.gz", "jsonl.gz")
OPTIONAL_EVENT_COLUMNS = ("event", "value", "event_id")


def _columns(path: Path) -> set[str]:
    """Column names of a table, read cheaply (header row or schema)."""
    import pandas as pd
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return set(pq.read_schema(path).names)
    if ".jsonl" in path.suffixes or ".ndjson" in path.suffixes:
        return set(pd.read_json(path, lines=True, nrows=1).columns)
    return set(pd.read_csv(path, sep=None, engine="python", nrows=0).columns)


def load(data_dir: str | Path, *, name: str = "events", strict: bool = True) -> Dataset:
    data_dir = check_dir(data_dir, "events")
    events_path = find(data_dir, "events", *(f"events.{s}" for s in _SUFFIXES))
    present = _columns(events_path)
    extra = {c: c for c in OPTIONAL_EVENT_COLUMNS if c in present}
    timestamp = "timestamp" if "timestamp" in present else None
    inter = read_events(events_path, timestamp=timestamp, strict=strict, **extra)
    items_path = optional(data_dir, *(f"items.{s}" for s in _SUFFIXES))
    catalog = read_catalog(items_path, strict=strict) if items_path is not None else None
    return Dataset.from_interactions(name, inter, catalog, source=str(data_dir))
