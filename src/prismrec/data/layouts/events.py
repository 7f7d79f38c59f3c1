"""Your own data: a folder with an events table and, optionally, an items table.

``events.csv`` (or ``.tsv``, ``.parquet``, ``.jsonl``, gzipped or not) with columns
``user,item,timestamp`` and optionally ``event``, ``value``, ``event_id``; ``items.csv`` with
``item`` and any of ``title,description,categories,brand,tags`` (lists joined by ``|``).
This is also what ``prismrec.data.synthetic.SyntheticData.save`` writes.

Other column names are mapped with the options ``user``, ``item``, ``timestamp``, ``event``
(``prismrec train --user-col user_id --time-col ts ...``); the items table's id column is
the events table's item column when it has one, else ``item``. ``time_unit`` is ``s``,
``ms`` or ``iso`` (None: numbers are seconds, text is a date-time).
"""

from __future__ import annotations

from pathlib import Path

from prismrec.data.dataset import Dataset
from prismrec.data.layouts._common import check_dir, find, optional
from prismrec.data.readers import read_catalog, read_events
from prismrec.errors import DataError

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


def load(data_dir: str | Path, *, name: str = "events", strict: bool = True,
         user: str = "user", item: str = "item", timestamp: str | None = None,
         event: str | None = None, time_unit: str | None = None) -> Dataset:
    """``timestamp=None`` uses a ``timestamp`` column when there is one, else file order."""
    data_dir = check_dir(data_dir, "events")
    events_path = find(data_dir, "events", *(f"events.{s}" for s in _SUFFIXES))
    present = _columns(events_path)
    named = {"user": user, "item": item, "timestamp": timestamp, "event": event}
    missing = [f"{col!r} ({what})" for what, col in named.items()
               if col is not None and col not in present]
    if missing:
        raise DataError(f"{events_path}: no column {', '.join(missing)}; its columns are "
                        f"{', '.join(sorted(map(repr, present)))}. Name yours with --user-col, "
                        "--item-col, --time-col, --event-col (options user=, item=, "
                        "timestamp=, event=)")
    extra = {c: c for c in OPTIONAL_EVENT_COLUMNS if c in present and c not in named.values()}
    if event is not None:
        extra["event"] = event
    if timestamp is None and "timestamp" in present:
        timestamp = "timestamp"
    if timestamp is None and time_unit is not None:
        raise DataError(f"{events_path}: a time unit was given but there is no timestamp "
                        "column; name it with --time-col")
    inter = read_events(events_path, user=user, item=item, timestamp=timestamp, strict=strict,
                        time_unit=time_unit, **extra)
    items_path = optional(data_dir, *(f"items.{s}" for s in _SUFFIXES))
    catalog = None
    if items_path is not None:
        item_col = item if item in _columns(items_path) else "item"
        catalog = read_catalog(items_path, item=item_col, strict=strict)
    return Dataset.from_interactions(name, inter, catalog, source=str(data_dir))
