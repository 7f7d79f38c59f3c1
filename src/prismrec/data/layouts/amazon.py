"""Amazon product reviews, 2014 (McAuley et al.) and 2018 (Ni et al.) releases.

Reviews are JSON lines (gzipped or not) with ``reviewerID``, ``asin``, ``overall`` and
``unixReviewTime``; 2014 files may hold Python dict literals instead of JSON ("loose JSON"),
which are accepted. ``meta_<Category>.json(.gz)`` gives ``title``, ``description`` (string or
list), ``categories`` (2014: list of lists) or ``category`` (2018: list) and ``brand``.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data._tables import read_jsonl
from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.layouts._common import check_dir, listing
from prismrec.data.readers import read_events
from prismrec.errors import DataError

log = logging.getLogger(__name__)

_JSON = re.compile(r"\.(json|jsonl)(\.gz)?$", re.IGNORECASE)
META_KEYS = ["asin", "title", "description", "categories", "category", "brand"]


def load(data_dir: Path, *, reviews: str | None = None, meta: str | None = None,
         name: str | None = None, drop_duplicates: bool = True, strict: bool = True) -> Dataset:
    """Reviews as events (``value`` = stars) and, when a meta file is present, the catalogue.

    ``reviews``/``meta`` name the files inside ``data_dir`` when it holds several categories.
    The 2018 release repeats some reviews verbatim; ``drop_duplicates`` keeps one of each
    identical (user, item, time) event and counts the others in ``info["dropped"]``
    (``drop_duplicates=False``, the CLI's ``--keep-duplicates``, keeps them all).
    """
    d = check_dir(data_dir, "amazon")
    review_path = _pick_reviews(d, reviews)
    category = _category(review_path.name)
    inter = read_events(review_path, format="jsonl", user="reviewerID", item="asin",
                        timestamp="unixReviewTime", value="overall", loose=True, strict=strict)
    dup = inter.frame.duplicated(["user", "item", "timestamp"]).to_numpy()
    dropped = {}
    if drop_duplicates and dup.any():
        log.info("%s: dropped %d repeated reviews", review_path, int(dup.sum()))
        inter = inter.select(~dup)
        dropped["repeated (user, item, time) reviews"] = int(dup.sum())
    meta_path = _pick_meta(d, meta, category)
    catalog = read_meta(meta_path, strict=strict) if meta_path is not None else None
    return Dataset.from_interactions(name or category, inter, catalog, layout="amazon",
                                     reviews=review_path.name,
                                     meta=meta_path.name if meta_path else None,
                                     dropped=dropped, kept_duplicates=0 if drop_duplicates
                                     else int(dup.sum()))


def _category(filename: str) -> str:
    stem = _JSON.sub("", filename)
    stem = re.sub(r"^(reviews_|meta_)", "", stem)
    return re.sub(r"_5$", "", stem)


def _pick_reviews(d: Path, reviews: str | None) -> Path:
    if reviews is not None:
        path = d / reviews
        if not path.exists():
            raise DataError(f"amazon: {path} not found; found: {listing(d)}")
        return path
    files = sorted(p for p in d.iterdir() if _JSON.search(p.name) and not
                   p.name.startswith("meta_"))
    if len(files) != 1:
        what = ", ".join(p.name for p in files) if files else "none"
        raise DataError(
            f"amazon: expected one reviews file (*.json or *.json.gz, not meta_*) in {d}, found "
            f"{what}; pass reviews= to choose (directory holds: {listing(d)})"
        )
    return files[0]


def _pick_meta(d: Path, meta: str | None, category: str) -> Path | None:
    if meta is not None:
        path = d / meta
        if not path.exists():
            raise DataError(f"amazon: {path} not found; found: {listing(d)}")
        return path
    files = sorted(p for p in d.glob("meta_*") if _JSON.search(p.name))
    same = [p for p in files if _category(p.name) == category]
    if same:
        return same[0]
    if len(files) == 1:
        return files[0]
    log.info("amazon: no meta_%s.json(.gz) in %s; loading without a catalogue", category, d)
    return None


def read_meta(path: Path, *, strict: bool = True) -> Catalog:
    """Catalogue from a meta file (2014 or 2018 keys, JSON or Python-literal lines)."""
    t = read_jsonl(path, META_KEYS, loose=True, strict=strict, required=1)
    f = t.frame
    ok = f["asin"].notna().to_numpy()
    f = f[ok]
    dup = f["asin"].astype(str).duplicated().to_numpy()
    if dup.any():  # the 2018 metadata repeats some products
        log.info("%s: %d repeated products ignored", path, int(dup.sum()))
        f = f[~dup]
    cats = [_categories(a, b) for a, b in zip(f["categories"], f["category"], strict=True)]
    df = pd.DataFrame({
        "item": f["asin"].astype(str).to_numpy(),
        "title": [_text(v) for v in f["title"]],
        "description": [_text(v) for v in f["description"]],
        "categories": cats,
        "brand": [_text(v) for v in f["brand"]],
    })
    return Catalog.from_frame(df, title="title", description="description",
                              categories="categories", brand="brand", source=str(path))


def _text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        v = " ".join(str(x) for x in v if x)
    return html.unescape(str(v)).strip()


def _categories(old, new) -> list[str]:
    """2014: list of category paths (list of lists); 2018: one flat list. Distinct, in order."""
    out: list[str] = []
    for v in (old, new):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        for x in v:
            for c in (x if isinstance(x, (list, tuple, np.ndarray)) else [x]):
                c = html.unescape(str(c)).strip()
                if c and c not in out:
                    out.append(c)
    return out
