"""MIND (Microsoft News): ``behaviors.tsv`` impressions and ``news.tsv`` articles.

``behaviors.tsv``: impression id, user id, time (``11/15/2019 8:55:22 AM``), the user's click
history before the logging period (space-separated news ids) and the impression
(``N123-1 N456-0``: shown news with a click flag). Events are clicks: clicked news at the
impression time (``event="click"``) and, once per user, the history clicks (``event="history"``),
placed one second apart just before that user's first impression, in their listed order
(the release has no times for them). Each folder of the release (train, dev) can be loaded
alone, or a parent folder holding several of them at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data._tables import read_table
from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions
from prismrec.data.layouts._common import check_dir, listing, split_tokens
from prismrec.errors import DataError

log = logging.getLogger(__name__)

BEHAVIORS = ["impression_id", "user", "time", "history", "impressions"]
NEWS = ["item", "category", "subcategory", "title", "abstract", "url", "title_entities",
        "abstract_entities"]
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def load(data_dir: Path, *, name: str | None = None, strict: bool = True) -> Dataset:
    """Click events and the news catalogue from one MIND folder or a folder of them."""
    d = check_dir(data_dir, "mind")
    folders = [d] if (d / "behaviors.tsv").exists() else sorted(
        p for p in d.iterdir() if p.is_dir() and (p / "behaviors.tsv").exists())
    if not folders:
        raise DataError(f"mind: no behaviors.tsv in {d} or its sub-folders; found: {listing(d)}")
    frames = [_clicks(f / "behaviors.tsv", strict) for f in folders]
    history = pd.concat([h for h, _, _ in frames], ignore_index=True)
    clicks = pd.concat([c for _, c, _ in frames], ignore_index=True)
    bad = sum(n for _, _, n in frames)
    dropped = {"impressions with a bad time or user (--no-strict)": bad} if bad else {}
    inter = _merge(history, clicks)
    news = [f / "news.tsv" for f in folders if (f / "news.tsv").exists()]
    catalog = read_news(news) if news else None
    return Dataset.from_interactions(name or d.name, inter, catalog, layout="mind",
                                     folders=[f.name for f in folders], dropped=dropped)


def _clicks(path: Path, strict: bool) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(history rows: user, items string, first impression time; click events; impressions
    skipped for a bad time or user)."""
    t = read_table(path, BEHAVIORS, format="tsv", names=BEHAVIORS, quoting=False, strict=strict)
    f = t.frame
    when = pd.to_datetime(f["time"], format=TIME_FORMAT, errors="coerce", utc=True)
    bad = when.isna().to_numpy() | f["user"].isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if strict:
            raise DataError(f"{t.where(row)}: cannot parse time {f['time'].iloc[row]!r} "
                            f"(expected like 11/15/2019 8:55:22 AM) or missing user id")
        log.warning("%s: skipped %d impression(s) with a bad time or user", path, int(bad.sum()))
        f, when = f[~bad].reset_index(drop=True), when[~bad].reset_index(drop=True)
    seconds = ((when - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64)

    clicked = f["impressions"].fillna("").str.findall(r"(\S+)-1(?=\s|$)").explode().dropna()
    rows = clicked.index.to_numpy()
    clicks = pd.DataFrame({
        "user": f["user"].to_numpy(dtype=object)[rows],
        "item": clicked.to_numpy(dtype=object),
        "timestamp": seconds[rows],
        "event": "click",
    })
    first = pd.DataFrame({"user": f["user"].to_numpy(dtype=object), "t": seconds,
                          "history": f["history"].fillna("").to_numpy(dtype=object)})
    first = first.sort_values("t", kind="stable").drop_duplicates("user")
    return first, clicks, int(bad.sum())


def _merge(history: pd.DataFrame, clicks: pd.DataFrame) -> Interactions:
    """History clicks (once per user, before the user's first impression) then the clicks."""
    history = history.sort_values("t", kind="stable").drop_duplicates("user")
    lengths, tokens = split_tokens(history["history"])
    start = np.repeat(history["t"].to_numpy() - lengths, lengths)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    hist = pd.DataFrame({
        "user": np.repeat(history["user"].to_numpy(dtype=object), lengths),
        "item": tokens,
        "timestamp": start + pos,  # one second apart, the last one second before the impression
        "event": "history",
    })
    events = pd.concat([hist, clicks], ignore_index=True)
    if len(events) == 0:
        raise DataError("mind: no clicks found in behaviors.tsv")
    return Interactions.from_frame(events, event="event", source="behaviors.tsv")


def read_news(paths: list[Path]) -> Catalog:
    """``news.tsv`` files -> title, description = abstract, categories = [category, sub]."""
    frames = [read_table(p, NEWS, format="tsv", names=NEWS, quoting=False).frame for p in paths]
    f = pd.concat(frames, ignore_index=True).drop_duplicates("item").reset_index(drop=True)
    cats = [[c for c in (a, b) if isinstance(c, str) and c]
            for a, b in zip(f["category"], f["subcategory"], strict=True)]
    df = pd.DataFrame({"item": f["item"], "title": f["title"], "abstract": f["abstract"],
                       "categories": cats})
    cat = Catalog.from_frame(df, description="abstract", categories="categories",
                             source=", ".join(map(str, paths)))
    cat.frame["url"] = f["url"].fillna("").to_numpy()
    return cat

