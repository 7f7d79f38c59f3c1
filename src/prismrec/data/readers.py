"""Read event and catalogue files (CSV/TSV, Parquet, JSON lines; gzipped or not).

Every problem a user can cause comes back as a ``DataError`` naming the file, the line and what
to do. ``strict=False`` skips bad rows instead, counts them per reason in
``frame.attrs["skipped"]`` / ``frame.attrs["skipped_reasons"]`` and logs one warning.
The good path is vectorised (pandas' C parser, pyarrow's JSON reader); the line-by-line path
runs only to locate or skip bad lines.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data._tables import Table, check_file, fmt_cols, read_header, read_table
from prismrec.data.catalog import TEXT_FIELDS, Catalog
from prismrec.data.interactions import Interactions
from prismrec.errors import DataError

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- public readers


def read_events(
    path: str | Path,
    *,
    format: str | None = None,
    user: str = "user",
    item: str = "item",
    timestamp: str | None = "timestamp",
    event: str | None = None,
    value: str | None = None,
    event_id: str | None = None,
    sep: str | None = None,
    names: list[str] | None = None,
    encoding: str = "utf-8",
    strict: bool = True,
    loose: bool = False,
    time_unit: str | None = None,
) -> Interactions:
    """Events from a file; the keyword arguments name its columns.

    ``format`` is ``csv``, ``tsv``, ``parquet`` or ``jsonl``, inferred from the suffix
    (``.csv .tsv .txt .dat .parquet .jsonl .ndjson .json``, each optionally ``.gz``) when None.
    ``sep=None`` sniffs the separator of a text table; ``names`` gives column names for a file
    without a header line. ``timestamp=None`` means rows are already in time order.
    ``loose=True`` also accepts Python dict literals as JSON lines (Amazon 2014 files).
    ``time_unit`` says how to read the timestamp column: ``"s"`` (unix seconds), ``"ms"``
    (unix milliseconds), ``"iso"`` (date-time text); None guesses numbers as seconds and text
    as date-times.
    """
    check_time_unit(time_unit)
    wanted = {"user": user, "item": item, "timestamp": timestamp, "event": event,
              "value": value, "event_id": event_id}
    columns = list(dict.fromkeys(c for c in wanted.values() if c is not None))
    opts = dict(format=format, sep=sep, names=names, encoding=encoding, strict=strict,
                loose=loose, numeric=tuple(c for c in (timestamp, value) if c is not None))
    try:
        return events_from_table(read_table(path, columns, **opts), strict=strict,
                                 time_unit=time_unit, **wanted)
    except _InexactLines:  # re-read line by line to name the bad lines exactly
        return events_from_table(read_table(path, columns, fast=False, **opts), strict=strict,
                                 time_unit=time_unit, **wanted)


def events_from_table(table: Table, *, user: str = "user", item: str = "item",
                      timestamp: str | None = "timestamp", event: str | None = None,
                      value: str | None = None, event_id: str | None = None,
                      strict: bool = True, time_unit: str | None = None) -> Interactions:
    """Validate raw columns read by ``read_table`` row by row and build ``Interactions``."""
    check_time_unit(time_unit)
    wanted = {"user": user, "item": item, "timestamp": timestamp, "event": event,
              "value": value, "event_id": event_id}
    frame = _clean_events(table, wanted, strict, time_unit)
    inter = Interactions.from_frame(frame, user=user, item=item, timestamp=timestamp, event=event,
                                    value=value, event_id=event_id, source=str(table.path))
    _record_skipped(inter.frame, table)
    return inter


def read_catalog(
    path: str | Path,
    *,
    format: str | None = None,
    item: str = "item",
    title: str | None = None,
    description: str | None = None,
    categories: str | None = None,
    brand: str | None = None,
    tags: str | None = None,
    list_sep: str = "|",
    sep: str | None = None,
    encoding: str = "utf-8",
    strict: bool = True,
) -> Catalog:
    """Item catalogue from a file.

    A text field left as None is read from the column of the same name when the file has one
    (``title``, ``description``, ``categories``, ``brand``, ``tags``); a column named
    explicitly must exist. List fields may be real lists (JSON, Parquet) or strings split on
    ``list_sep``. A repeated item id is an error (strict) or skipped (lenient).
    """
    path = check_file(path)
    named = {"title": title, "description": description, "categories": categories,
             "brand": brand, "tags": tags}
    header = read_header(path, format=format, sep=sep, encoding=encoding)
    chosen = {f: (c if c is not None else (f if f in header else None)) for f, c in named.items()}
    if item in header and not any(chosen.values()):
        raise DataError(
            f"{path}: no text column found; columns present: {fmt_cols(header)}. "
            f"Name one with title=, description=, categories=, brand= or tags= "
            f"(known fields: {', '.join(TEXT_FIELDS)})."
        )
    columns = [item, *(c for c in chosen.values() if c is not None)]
    columns = list(dict.fromkeys(columns))
    opts = dict(format=format, sep=sep, encoding=encoding, strict=strict)
    table = read_table(path, columns, **opts)
    try:
        f = _clean_catalog(table, item, strict)
    except _InexactLines:
        table = read_table(path, columns, fast=False, **opts)
        f = _clean_catalog(table, item, strict)
    cat = Catalog.from_frame(f, item=item, list_sep=list_sep, source=str(path), **chosen)
    _record_skipped(cat.frame, table)
    return cat


# ---------------------------------------------------------------- row validation


def _missing(col: pd.Series) -> np.ndarray:
    m = col.isna().to_numpy().copy()
    if col.dtype.kind not in "iufbM":  # text: an empty string is missing too
        m |= col.to_numpy(dtype=object) == ""
    return m


TIME_UNITS = {"s": "unix seconds", "ms": "unix milliseconds", "iso": "an ISO date-time"}


def check_time_unit(unit: str | None) -> None:
    if unit is not None and unit not in TIME_UNITS:
        raise DataError(f"time unit must be one of {', '.join(TIME_UNITS)} (or None to guess), "
                        f"got {unit!r}")


def parse_times(col: pd.Series, unit: str | None = None) -> np.ndarray:
    """Unix seconds (float64) from numbers, numeric strings or date-times; NaN where unparsable.

    ``unit`` fixes the reading: ``"s"`` numbers are seconds, ``"ms"`` numbers are
    milliseconds, ``"iso"`` text is a date-time; a value of another kind is NaN (unparsable).
    None guesses per value, as described below.

    Text columns are tried as numbers first when a sample of them holds numbers, else as dates
    first (a 19M-row log of ISO times should not be run through the number parser in vain).
    """
    if unit in ("s", "ms"):
        secs = (col.to_numpy(dtype=np.float64) if col.dtype.kind in "iufb" else
                np.full(len(col), np.nan) if col.dtype.kind == "M" else _numbers(col))
        return secs / 1000.0 if unit == "ms" else secs
    if unit == "iso":
        if col.dtype.kind == "M":
            return _seconds(col)
        if col.dtype.kind in "iufb":
            return np.full(len(col), np.nan)
        out = np.full(len(col), np.nan)
        text = col.notna().to_numpy() & np.isnan(_numbers(col))  # a bare number is no date
        out[text] = _dates(col[text])
        return out
    if col.dtype.kind in "iufb":
        return col.to_numpy(dtype=np.float64)
    if col.dtype.kind == "M":
        return _seconds(col)
    out = np.full(len(col), np.nan)
    todo = col.notna().to_numpy().copy()
    sample = col[todo][:64]
    numbers_first = bool(pd.to_numeric(sample, errors="coerce").notna().any())
    for parse in (_numbers, _dates) if numbers_first else (_dates, _numbers):
        if not todo.any():
            break
        out[todo] = parse(col[todo])
        todo &= np.isnan(out)
    return out


def _numbers(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _dates(col: pd.Series) -> np.ndarray:
    text = col.astype(str)
    dt = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    again = dt.isna().to_numpy()
    if again.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
            dt[again] = pd.to_datetime(text[again], errors="coerce", utc=True, format="mixed")
    return _seconds(dt)


def _seconds(col: pd.Series) -> np.ndarray:
    if getattr(col.dt, "tz", None) is None:
        col = col.dt.tz_localize("UTC")
    delta = col.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")
    return (delta / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)


class _InexactLines(Exception):
    """Raised when a bad row was found in a table whose line numbers are approximate."""


@dataclass
class _Verdicts:
    """Per-row problem: a short reason (for counting) and a detailed message (for errors)."""

    n: int
    bad: np.ndarray = field(init=False)
    keys: np.ndarray = field(init=False)
    details: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bad = np.zeros(self.n, dtype=bool)
        self.keys = self.details = np.empty(0, dtype=object)  # allocated at the first flag

    def flag(self, mask: np.ndarray, key: str, details=None) -> None:
        new = np.asarray(mask, dtype=bool) & ~self.bad
        if new.any():
            if not self.bad.any():
                self.keys = np.full(self.n, "", dtype=object)
                self.details = np.full(self.n, "", dtype=object)
            self.bad |= new
            self.keys[new] = key
            self.details[new] = key if details is None else details(new)


def _clean_catalog(table: Table, item: str, strict: bool) -> pd.DataFrame:
    f = table.frame
    v = _Verdicts(len(f))
    missing = _missing(f[item])
    v.flag(missing, f"missing item id (column {item!r})")
    ids = pd.Series(np.where(missing, "", f[item].astype(str).to_numpy()))
    v.flag(~missing & ids.duplicated().to_numpy(), "repeated item id",
           lambda m: [f"item id {x!r} appears a second time" for x in ids[m]])
    return _drop_bad(table, v, strict)


def _clean_events(table: Table, wanted: dict[str, str | None], strict: bool,
                  time_unit: str | None = None) -> pd.DataFrame:
    f = table.frame
    v = _Verdicts(len(f))
    for name in ("user", "item"):
        col = wanted[name]
        v.flag(_missing(f[col]), f"missing {name} id (column {col!r})")
    ts_col = wanted["timestamp"]
    if ts_col is not None:
        ts = parse_times(f[ts_col], time_unit)
        expected = TIME_UNITS.get(time_unit, "unix seconds or a date-time")
        v.flag(~np.isfinite(ts), "unparsable timestamp",
               lambda m: [f"cannot parse timestamp {x!r} in column {ts_col!r} (expected "
                          f"{expected})" for x in f[ts_col][m]])
        f = f.assign(**{ts_col: ts})
    val_col = wanted["value"]
    if val_col is not None:
        num = pd.to_numeric(f[val_col], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        v.flag(np.isnan(num) & ~_missing(f[val_col]), "value is not a number",
               lambda m: [f"value {x!r} in column {val_col!r} is not a number"
                          for x in f[val_col][m]])
        f = f.assign(**{val_col: num})
    table.frame = f
    return _drop_bad(table, v, strict)


def _drop_bad(table: Table, verdicts: _Verdicts, strict: bool) -> pd.DataFrame:
    """The table's frame without flagged rows; strict raises on the first flagged row."""
    bad = verdicts.bad
    if bad.any() and not table.exact:
        raise _InexactLines
    if bad.any() and strict:
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{table.where(row)}: {verdicts.details[row]}; fix the row or pass "
                        "strict=False to skip bad rows")
    if bad.any():
        table.skipped.update(Counter(verdicts.keys[bad].tolist()))
        table.frame = table.frame.loc[~bad].reset_index(drop=True)
        table.lines = table.lines[~bad]
    if len(table.frame) == 0:
        raise DataError(f"{table.path}: no usable rows ({_skip_text(table.skipped)})")
    return table.frame


def _skip_text(skipped: Counter) -> str:
    return "; ".join(f"{n} {why}" for why, n in skipped.most_common()) or "nothing skipped"


def _record_skipped(frame: pd.DataFrame, table: Table) -> None:
    total = int(sum(table.skipped.values()))
    frame.attrs["skipped"] = total
    frame.attrs["skipped_reasons"] = dict(table.skipped)
    if total:
        log.warning("%s: skipped %d bad row(s): %s", table.path, total,
                    _skip_text(table.skipped))
