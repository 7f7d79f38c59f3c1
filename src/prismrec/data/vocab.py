"""Stable mapping between external ids (any hashable) and dense indices 0..n-1."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from prismrec.errors import UnknownIdError


class Vocab:
    """Ids in first-seen order; indices never change once given, so the vocabulary can grow.

    Ids are stored as strings: a CSV, a JSON request and a Parquet file may spell the same id
    as 42, "42" or 42.0, and a recommender must not treat those as different users.
    """

    def __init__(self, ids: Iterable = ()) -> None:
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self.add(ids)

    @staticmethod
    def _key(x) -> str:
        if isinstance(x, str):
            return x
        if isinstance(x, (float, np.floating)) and float(x).is_integer():
            return str(int(x))
        return str(x)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, x) -> bool:
        return self._key(x) in self._index

    def __iter__(self):
        return iter(self._ids)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self._ids == other._ids

    def __repr__(self) -> str:
        return f"Vocab({len(self)} ids)"

    @classmethod
    def _factorize(cls, ids: Iterable) -> tuple[np.ndarray, list[str]]:
        """(codes, unique keys): factorise the raw values first, stringify only the uniques."""
        if isinstance(ids, (np.ndarray, pd.Series, pd.Index)):
            arr = np.asarray(ids)
        else:
            arr = np.array([cls._key(x) for x in ids], dtype=object)
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError("ids must not be missing (NaN)")
        codes, uniq = pd.factorize(arr.ravel())
        return codes, [cls._key(x) for x in uniq]

    def add(self, ids: Iterable) -> np.ndarray:
        """Add unseen ids (keeping first-seen order) and return the indices of all given ids."""
        codes, keys = self._factorize(ids)
        for k in keys:
            if k not in self._index:
                self._index[k] = len(self._ids)
                self._ids.append(k)
        return self._table(keys)[codes]

    def _table(self, keys: list[str]) -> np.ndarray:
        return np.fromiter((self._index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def index(self, ids: Iterable, *, missing: str = "error") -> np.ndarray:
        """Indices of ids. missing="error" raises on an unknown id; "-1" maps it to -1."""
        if missing not in ("error", "-1"):
            raise ValueError(f"missing must be 'error' or '-1', not {missing!r}")
        codes, keys = self._factorize(ids)
        table = self._table(keys)
        if missing == "error" and (table < 0).any():
            bad = [k for k, j in zip(keys, table, strict=True) if j < 0][:5]
            raise UnknownIdError(f"unknown id(s): {', '.join(map(repr, bad))}")
        return table[codes]

    def index_of(self, x) -> int:
        """Index of one id; raises UnknownIdError with the id in the message."""
        j = self._index.get(self._key(x))
        if j is None:
            raise UnknownIdError(f"unknown id {self._key(x)!r}")
        return j

    def ids(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        ids = self._ids  # tolist: Python ints at once (iterating numpy scalars is ~4x slower)
        return [ids[i] for i in np.asarray(indices).ravel().astype(np.int64, copy=False).tolist()]

    def to_list(self) -> list[str]:
        return list(self._ids)

    @classmethod
    def from_list(cls, ids: list[str]) -> Vocab:
        v = cls(ids)
        if len(v) != len(ids):
            raise ValueError("vocabulary list has duplicate ids")
        return v

    def to_series(self) -> pd.Series:
        return pd.Series(self._ids, name="id")
