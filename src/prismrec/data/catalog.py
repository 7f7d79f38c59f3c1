"""Item catalogue: the text a language model reads to understand what each item is about."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prismrec.data.interactions import _id_strings
from prismrec.errors import DataError

TEXT_FIELDS = ("title", "description", "categories", "brand", "tags")


@dataclass(frozen=True)
class Catalog:
    """One row per item, indexed by item id (string), with text columns.

    Known text fields are ``title``, ``description``, ``categories``, ``brand`` and ``tags``;
    ``categories`` and ``tags`` hold lists of strings. Other columns are kept and may be used
    by business filters.
    """

    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, item) -> bool:
        return str(item) in self.frame.index

    @property
    def ids(self) -> list[str]:
        return list(self.frame.index)

    @property
    def text_fields(self) -> list[str]:
        return [c for c in TEXT_FIELDS if c in self.frame.columns]

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        item: str = "item",
        title: str | None = "title",
        description: str | None = None,
        categories: str | None = None,
        brand: str | None = None,
        tags: str | None = None,
        list_sep: str = "|",
        source: str = "DataFrame",
    ) -> Catalog:
        """Build from a DataFrame, naming its columns.

        List fields (categories, tags) may be strings split on ``list_sep``.
        """
        if hasattr(df, "to_pandas") and not isinstance(df, pd.DataFrame):
            df = df.to_pandas()
        named = {"title": title, "description": description, "categories": categories,
                 "brand": brand, "tags": tags}
        missing = [c for c in [item, *named.values()] if c is not None and c not in df.columns]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
                f"columns present: {', '.join(map(repr, map(str, df.columns)))}"
            )
        ids = _id_strings(df[item].reset_index(drop=True))
        out = pd.DataFrame(index=pd.Index(ids, name="item"))
        if out.index.has_duplicates:
            dup = out.index[out.index.duplicated()][0]
            raise DataError(f"{source}: item id {dup!r} appears more than once in the catalogue")
        for field, col in named.items():
            if col is None:
                continue
            values = df[col].reset_index(drop=True)
            if field in ("categories", "tags"):
                out[field] = [_as_list(v, list_sep) for v in values]
            else:
                out[field] = values.fillna("").astype(str).to_numpy()
        return cls(out)

    def rows(self, ids) -> pd.DataFrame:
        """Catalogue rows for ids, in order; unknown ids give empty rows."""
        return self.frame.reindex([str(i) for i in ids])

    def lists(self, ids, field: str) -> list[list[str]]:
        """A list field (``categories``, ``tags``) for ids, in order: [] where an id is
        unknown, the catalogue has no such column, or the value is missing."""
        return list_values(self.rows(ids), field)

    def merge(self, other: Catalog) -> Catalog:
        """Items of ``other`` added or replacing those with the same id."""
        f = pd.concat([self.frame[~self.frame.index.isin(other.frame.index)], other.frame])
        return Catalog(f)


def list_values(rows: pd.DataFrame, col: str) -> list[list[str]]:
    """Column ``col`` of catalogue rows as lists of non-blank strings ([] where missing)."""
    if col not in rows.columns:
        return [[] for _ in range(len(rows))]
    out = []
    for v in rows[col].tolist():
        if isinstance(v, (list, tuple, np.ndarray)):
            out.append([str(x) for x in v if str(x).strip()])
        else:
            out.append([])
    return out


def _as_list(v, sep: str) -> list[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    if isinstance(v, str):
        return [p.strip() for p in v.split(sep) if p.strip()]
    return [str(x) for x in v]
