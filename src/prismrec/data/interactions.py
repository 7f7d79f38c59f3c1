"""Timestamped events: who did what to which item, and when."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prismrec.errors import DataError

COLUMNS = ("user", "item", "timestamp", "event", "value", "event_id")


@dataclass(frozen=True)
class Interactions:
    """A tidy event table with canonical columns.

    ``frame`` always has ``user``, ``item`` (ids as strings) and ``timestamp`` (float64 seconds,
    or the row position when the source has no clock); ``event``, ``value`` and ``event_id`` are
    kept when present. Row order is the input order: ties in time keep it.
    """

    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def has_time(self) -> bool:
        return bool(self.frame.attrs.get("has_time", True))

    @property
    def users(self) -> pd.Series:
        return self.frame["user"]

    @property
    def items(self) -> pd.Series:
        return self.frame["item"]

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        user: str = "user",
        item: str = "item",
        timestamp: str | None = "timestamp",
        event: str | None = None,
        value: str | None = None,
        event_id: str | None = None,
        source: str = "DataFrame",
    ) -> Interactions:
        """Build from any DataFrame (pandas, or polars via ``.to_pandas()``), naming its columns.

        Timestamps may be numbers (unix seconds) or date-time strings/objects. ``timestamp=None``
        means the rows are already in time order per user.
        """
        if hasattr(df, "to_pandas") and not isinstance(df, pd.DataFrame):
            df = df.to_pandas()
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{source}: expected a DataFrame, got {type(df).__name__}")
        wanted = {"user": user, "item": item, "timestamp": timestamp, "event": event,
                  "value": value, "event_id": event_id}
        missing = [c for c in wanted.values() if c is not None and c not in df.columns]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
                f"columns present: {', '.join(map(repr, map(str, df.columns)))}. "
                "Map your column names with user=, item=, timestamp=."
            )
        if len(df) == 0:
            raise DataError(f"{source}: no events (the table is empty)")
        out = pd.DataFrame(index=pd.RangeIndex(len(df)))
        for name in ("user", "item"):
            col = df[wanted[name]].reset_index(drop=True)
            if col.isna().any():
                row = int(np.flatnonzero(col.isna().to_numpy())[0])
                raise DataError(
                    f"{source}: row {row}: missing {name} id in column {wanted[name]!r}"
                )
            out[name] = _id_strings(col)
        if timestamp is None:
            out["timestamp"] = np.arange(len(df), dtype=np.float64)
            out.attrs["has_time"] = False
        else:
            out["timestamp"] = parse_timestamps(df[timestamp].reset_index(drop=True), source)
            out.attrs["has_time"] = True
        if event is not None:
            out["event"] = df[event].astype(str).to_numpy()
        if value is not None:
            v = pd.to_numeric(df[value].reset_index(drop=True), errors="coerce")
            out["value"] = v.to_numpy(dtype=np.float64)
        if event_id is not None:
            out["event_id"] = _id_strings(df[event_id].reset_index(drop=True))
        return cls(out)

    def sorted(self) -> Interactions:
        """Events ordered by (user, time); ties keep input order."""
        order = np.lexsort((self.frame["timestamp"].to_numpy(), _codes(self.frame["user"])))
        f = self.frame.iloc[order].reset_index(drop=True)
        f.attrs.update(self.frame.attrs)
        return Interactions(f)

    def select(self, mask: np.ndarray) -> Interactions:
        f = self.frame[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        f.attrs.update(self.frame.attrs)
        return Interactions(f)

    def concat(self, other: Interactions) -> Interactions:
        f = pd.concat([self.frame, other.frame], ignore_index=True)
        f.attrs.update(self.frame.attrs)
        return Interactions(f)


def _codes(col: pd.Series) -> np.ndarray:
    return pd.factorize(col)[0]


def _id_strings(col: pd.Series) -> np.ndarray:
    """Ids as strings, with 42.0 and 42 spelled alike (a float column of integer ids)."""
    if col.dtype.kind == "f" and np.all(np.mod(col.to_numpy(), 1) == 0):
        col = col.astype(np.int64)
    return col.astype(str).to_numpy(dtype=object)


def parse_timestamps(col: pd.Series, source: str = "input") -> np.ndarray:
    """Unix seconds as float64 from numbers, numeric strings or date-time values."""
    if col.dtype.kind in "iuf":
        ts = col.to_numpy(dtype=np.float64)
    elif col.dtype.kind == "M":
        ts = _datetime_seconds(col)
    else:
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().all():
            ts = num.to_numpy(dtype=np.float64)
        else:
            dt = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
            bad = dt.isna().to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{source}: row {row}: cannot parse timestamp {col.iloc[row]!r} "
                    "(expected unix seconds or an ISO date-time)"
                )
            ts = _datetime_seconds(dt)
    bad = ~np.isfinite(ts)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {row}: timestamp is missing or not finite")
    return ts


def _datetime_seconds(col: pd.Series) -> np.ndarray:
    if getattr(col.dt, "tz", None) is None:
        col = col.dt.tz_localize("UTC")
    epoch = pd.Timestamp(0, tz="UTC")
    return ((col.dt.tz_convert("UTC") - epoch) / pd.Timedelta(seconds=1)).to_numpy(np.float64)
