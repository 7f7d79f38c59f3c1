"""Last.fm: the HetRec 2011 2K-user release and the Last.fm 1K-user listening log.

HetRec 2K has no listening times, only total play counts (``user_artists.dat``); its dated
events are tag applications (``user_taggedartists-timestamps.dat``, milliseconds). Events are
therefore one per (user, artist, time) tagging, with the user's play count of that artist as
``value``; ``events="listens"`` gives the undated play counts instead. Artists are items
(title = name, tags = tag values, most applied first).

Last.fm 1K (``userid-timestamp-artid-artname-traid-traname.tsv``, no header) has one event per
played track; tracks are items (title = track name, categories = [artist name]); tracks without
a MusicBrainz id are keyed by artist and track name.
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
from prismrec.data.layouts._common import attach_lists, check_dir, listing, tags_per_item
from prismrec.data.readers import events_from_table, read_events
from prismrec.errors import DataError

log = logging.getLogger(__name__)

LOG_1K = "userid-timestamp-artid-artname-traid-traname.tsv"
COLUMNS_1K = ["user", "timestamp", "artist_id", "artist", "track_id", "track"]


def load(data_dir: Path, *, name: str | None = None, events: str = "tags",
         strict: bool = True) -> Dataset:
    """HetRec 2K (``user_artists.dat`` present) or Last.fm 1K (the listening log present)."""
    d = check_dir(data_dir, "lastfm")
    if (d / "user_artists.dat").exists():
        return _load_hetrec(d, name or "lastfm-hetrec", events, strict)
    if (d / LOG_1K).exists():
        return _load_1k(d, name or "lastfm-1k", strict)
    raise DataError(f"lastfm: {d} has neither user_artists.dat (HetRec 2K) nor {LOG_1K} "
                    f"(Last.fm 1K); found: {listing(d)}")


def _load_hetrec(d: Path, name: str, events: str, strict: bool) -> Dataset:
    if events not in ("tags", "listens"):
        raise ValueError(f"events must be 'tags' or 'listens', not {events!r}")
    listens = read_events(d / "user_artists.dat", format="tsv", user="userID", item="artistID",
                          timestamp=None, value="weight", strict=strict)
    if events == "listens":
        inter = listens
    else:
        tagged = d / "user_taggedartists-timestamps.dat"
        if not tagged.exists():
            raise DataError(f"lastfm: {tagged.name} is needed for dated events (or pass "
                            f"events='listens'); found: {listing(d)}")
        raw = read_events(tagged, format="tsv", user="userID", item="artistID",
                          timestamp="timestamp", event_id="tagID", strict=strict)
        f = raw.frame
        f["timestamp"] = f["timestamp"] / 1000.0  # milliseconds in the release
        one = f.drop_duplicates(["user", "item", "timestamp"]).reset_index(drop=True)
        plays = listens.frame.drop_duplicates(["user", "item"])
        weight = plays.set_index(["user", "item"])["value"]
        key = pd.MultiIndex.from_arrays([one["user"], one["item"]])
        frame = pd.DataFrame({
            "user": one["user"], "item": one["item"], "timestamp": one["timestamp"],
            "event": "tag", "value": weight.reindex(key).to_numpy(dtype=np.float64),
        })
        inter = Interactions.from_frame(frame, event="event", value="value", source=str(tagged))
    catalog = _hetrec_catalog(d)
    return Dataset.from_interactions(name, inter, catalog, layout="lastfm-hetrec", events=events)


def _hetrec_catalog(d: Path) -> Catalog | None:
    if not (d / "artists.dat").exists():
        return None
    artists = read_table(d / "artists.dat", ["id", "name", "url"], format="tsv",
                         quoting=False).frame
    cat = Catalog.from_frame(artists, item="id", title="name", source=str(d / "artists.dat"))
    cat.frame["url"] = artists["url"].fillna("").to_numpy()
    tagged, tags = d / "user_taggedartists-timestamps.dat", d / "tags.dat"
    if not tagged.exists():
        tagged = d / "user_taggedartists.dat"
    if tagged.exists() and tags.exists():
        names = read_table(tags, ["tagID", "tagValue"], format="tsv", encoding="latin-1",
                           quoting=False).frame
        names = pd.Series(names["tagValue"].to_numpy(), index=names["tagID"].to_numpy())
        applied = read_table(tagged, ["artistID", "tagID"], format="tsv").frame
        values = names.reindex(applied["tagID"].to_numpy())
        attach_lists(cat.frame, "tags", tags_per_item(applied["artistID"], values))
    return cat


def _load_1k(d: Path, name: str, strict: bool) -> Dataset:
    path = d / LOG_1K
    t = read_table(path, COLUMNS_1K, format="tsv", names=COLUMNS_1K, quoting=False, strict=strict)
    f = t.frame
    key = f["track_id"].where(f["track_id"].notna(),
                              f["artist"].fillna("") + " — " + f["track"].fillna(""))
    frame = pd.DataFrame({"user": f["user"], "item": key, "timestamp": f["timestamp"]})
    t.frame = frame
    inter = events_from_table(t, strict=strict)
    tracks = (pd.DataFrame({"item": key, "title": f["track"].fillna(""),
                            "artist": f["artist"].fillna(""),
                            "artist_id": f["artist_id"].fillna("")})
              .drop_duplicates("item").reset_index(drop=True))
    tracks["categories"] = [[a] if a else [] for a in tracks["artist"]]
    cat = Catalog.from_frame(tracks, categories="categories", source=str(path))
    cat.frame["artist_id"] = tracks["artist_id"].to_numpy()
    return Dataset.from_interactions(name, inter, cat, layout="lastfm-1k")
