"""``prismrec recommend``: top-k from a saved model, explained, with titles when known."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prismrec.errors import PrismrecError


def recommend_from_checkpoint(checkpoint: str | Path, *, user: str | None = None,
                              items: list[str] | None = None, k: int = 10,
                              filter_seen: bool = True, diversity: float | None = None,
                              mute: list[int] | None = None, boost: list[int] | None = None,
                              explain: bool = True) -> tuple[pd.DataFrame, dict]:
    """Top-``k`` for a known ``user`` or for a history of ``items`` (oldest first).

    Returns the list (the columns of ``Recommender.recommend``, without ``user``; a
    ``title`` column whenever the model's catalogue has titles, explained or not) and a
    document with ``user``/``items``, ``components`` and ``fallback``. ``diversity``,
    ``mute`` and ``boost`` steer a known user's interests.
    """
    from prismrec.recommender import Recommender

    if (user is None) == (items is None):
        raise PrismrecError("give exactly one of --user ID or --items ID,ID,...")
    if user is None and (mute or boost or diversity is not None):
        raise PrismrecError("--mute, --boost and --diversity steer a known user's interests: "
                            "use them with --user")
    rec = Recommender.load(checkpoint)
    doc: dict = {"user": user}
    if user is not None:
        frame = rec.recommend(user, k=k, filter_seen=filter_seen, diversity=diversity,
                              mute=mute, boost=boost, explain=explain)
        frame = frame.drop(columns="user")
    else:
        frame = rec.recommend_for_sequence(items, k=k, filter_seen=filter_seen,
                                           explain=explain)
        doc["items"] = items
    doc.update({key: frame.attrs.get(key) for key in ("components", "fallback")})
    return _with_titles(frame, getattr(rec, "catalog_", None)), doc


def _with_titles(frame: pd.DataFrame, catalog) -> pd.DataFrame:
    if ("title" in frame.columns or catalog is None or "title" not in catalog.frame.columns
            or not len(frame)):
        return frame
    titles = catalog.frame["title"].reindex(frame["item"].astype(str).to_numpy())
    pos = list(frame.columns).index("item") + 1
    out = frame.copy()
    out.insert(pos, "title", titles.fillna("").to_numpy())
    out.attrs.update(frame.attrs)
    return out
