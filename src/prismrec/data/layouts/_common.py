"""Helpers shared by the upstream layouts: finding files, splitting small text tables, tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data.interactions import Interactions
from prismrec.data.sequences import Sequences
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError


def check_dir(data_dir: str | Path, layout: str) -> Path:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{layout}: data directory {data_dir} not found (or not a directory)")
    return data_dir


def listing(data_dir: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in data_dir.iterdir())
    if not names:
        return "nothing (the directory is empty)"
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return ", ".join(names[:20]) + more


def find(data_dir: Path, layout: str, *candidates: str) -> Path:
    """The first candidate file (a name or glob) present in ``data_dir``."""
    for cand in candidates:
        hits = sorted(data_dir.glob(cand))
        if hits:
            return hits[0]
    raise DataError(
        f"{layout}: none of {', '.join(candidates)} found in {data_dir}; "
        f"found: {listing(data_dir)}"
    )


def optional(data_dir: Path, *candidates: str) -> Path | None:
    for cand in candidates:
        hits = sorted(data_dir.glob(cand))
        if hits:
            return hits[0]
    return None


def read_lines(path: Path, encoding: str = "utf-8") -> pd.Series:
    """Non-empty lines of a small text file (catalogues), with a clear error on bad bytes."""
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: the bytes are not valid {encoding}") from exc
    lines = pd.Series(text.splitlines(), dtype=object)
    return lines[lines.str.strip() != ""].reset_index(drop=True)


def split_fields(lines: pd.Series, sep: str, n: int, path: Path) -> pd.DataFrame:
    """Split every line into exactly ``n`` fields (the last keeps any further separators)."""
    parts = lines.str.split(sep, n=n - 1, expand=True, regex=False)
    if parts.shape[1] < n or parts[n - 1].isna().any():
        row = 0 if parts.shape[1] < n else int(np.flatnonzero(parts[n - 1].isna().to_numpy())[0])
        raise DataError(f"{path}: line {lines.index[row] + 1} {lines.iloc[row]!r} does not have "
                        f"{n} fields separated by {sep!r}")
    return parts


def tags_per_item(items: pd.Series, tags: pd.Series) -> pd.Series:
    """Distinct tags per item (case-insensitive), most applied first, as lists."""
    df = pd.DataFrame({"item": items.astype(str).to_numpy(),
                       "tag": tags.astype(object).to_numpy()}).dropna()
    df["tag"] = df["tag"].astype(str).str.strip()
    df = df[df["tag"] != ""]
    df["key"] = df["tag"].str.lower()
    df["pos"] = np.arange(len(df))
    g = (df.groupby(["item", "key"], sort=False)
           .agg(tag=("tag", "first"), n=("tag", "size"), first=("pos", "min"))
           .reset_index())
    g = g.sort_values(["item", "n", "first"], ascending=[True, False, True], kind="stable")
    items_sorted = g["item"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, items_sorted[1:] != items_sorted[:-1]]) if len(g) else []
    groups = np.split(g["tag"].to_numpy(dtype=object), starts[1:]) if len(g) else []
    return pd.Series([list(x) for x in groups], index=items_sorted[starts], dtype=object)


def attach_lists(frame: pd.DataFrame, column: str, lists: pd.Series) -> None:
    """Set ``frame[column]`` from a Series of lists indexed by item id; missing items get []."""
    got = lists.reindex(frame.index)
    frame[column] = [v if isinstance(v, list) else [] for v in got]


def flags_to_lists(flags: np.ndarray, names: list[str]) -> list[list[str]]:
    """Rows of 0/1 flags (N, G) to the list of names set in each row."""
    rows, cols = np.nonzero(flags)
    out: list[list[str]] = [[] for _ in range(flags.shape[0])]
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        out[r].append(names[c])
    return out


def split_tokens(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace-separated token lists: (lengths (N,), all tokens (E,)) without a row loop."""
    text = col.fillna("").astype(str)
    lengths = text.str.count(r"\S+").to_numpy(dtype=np.int64)
    tokens = np.array(" ".join(text.tolist()).split(), dtype=object)
    if len(tokens) != lengths.sum():  # cannot happen for plain whitespace; guard anyway
        raise DataError("token lists could not be split consistently")
    return lengths, tokens


def positional_interactions(seqs: Sequences, users: Vocab, items: Vocab) -> Interactions:
    """An event table for data without a clock: timestamps are positions within each user."""
    frame = pd.DataFrame({
        "user": np.asarray(users.to_list(), dtype=object)[seqs.row_ids()],
        "item": np.asarray(items.to_list(), dtype=object)[seqs.items],
        "timestamp": seqs.times.astype(np.float64),
    })
    frame.attrs["has_time"] = False
    return Interactions(frame)


def ordered_vocab(tokens: np.ndarray) -> Vocab:
    """Integer-like tokens in numeric order (so "0" gets index 0), others in first-seen order."""
    uniq = pd.unique(pd.Series(tokens, dtype=object))
    as_int = pd.to_numeric(pd.Series(uniq), errors="coerce")
    if len(uniq) and as_int.notna().all() and (as_int >= 0).all():
        order = np.argsort(as_int.to_numpy(), kind="stable")
        return Vocab.from_list([str(uniq[i]) for i in order])
    return Vocab.from_list([str(x) for x in uniq])
