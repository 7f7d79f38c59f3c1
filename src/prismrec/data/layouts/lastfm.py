"""Last.fm: the HetRec 2011 2K-user release and the Last.fm 1K-user listening log.

HetRec 2K has no listening times, only total play counts (``user_artists.dat``); its dated
events are tag applications: ``user_taggedartists-timestamps.dat`` (milliseconds) or, in
copies that lack it, ``user_taggedartists.dat`` (day, month, year: dated at midnight UTC, so
a user's taggings on one day tie). ``info["events_file"]`` says which was read. Events are
one per (user, artist, time) tagging (several tags applied at once are merged into one event
and counted in ``info["dropped"]``; ``drop_duplicates=False`` keeps one event per tag), with
the user's play count of that artist as ``value``; ``events="listens"`` gives the undated
play counts instead. Artists are items: title = artist name, categories and tags = the tag
values applied to the artist, most applied first.

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
         drop_duplicates: bool = True, strict: bool = True) -> Dataset:
    """HetRec 2K (``user_artists.dat`` present) or Last.fm 1K (the listening log present)."""
    d = check_dir(data_dir, "lastfm")
    if (d / "user_artists.dat").exists():
        return _load_hetrec(d, name or "lastfm-hetrec", events, drop_duplicates, strict)
    if (d / LOG_1K).exists():
        return _load_1k(d, name or "lastfm-1k", strict)
    raise DataError(f"lastfm: {d} has neither user_artists.dat (HetRec 2K) nor {LOG_1K} "
                    f"(Last.fm 1K); found: {listing(d)}")


TAGGED_MS, TAGGED_DAYS = "user_taggedartists-timestamps.dat", "user_taggedartists.dat"


def _tag_events(d: Path, strict: bool) -> tuple[pd.DataFrame, Path]:
    """(user, item, timestamp in seconds) per tag application, and the file read."""
    if (d / TAGGED_MS).exists():
        raw = read_events(d / TAGGED_MS, format="tsv", user="userID", item="artistID",
                          timestamp="timestamp", event_id="tagID", strict=strict,
                          time_unit="ms")
        return raw.frame, d / TAGGED_MS
    path = d / TAGGED_DAYS
    if not path.exists():
        raise DataError(f"lastfm: {TAGGED_MS} or {TAGGED_DAYS} is needed for dated events (or "
                        f"pass events='listens'); found: {listing(d)}")
    t = read_table(path, ["userID", "artistID", "tagID", "day", "month", "year"], format="tsv",
                   strict=strict, numeric=("day", "month", "year"))
    f = t.frame
    when = pd.to_datetime(pd.DataFrame({"year": f["year"], "month": f["month"],
                                        "day": f["day"]}), errors="coerce", utc=True)
    bad = when.isna().to_numpy()
    if bad.any() and strict:
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{t.where(row)}: day/month/year {f['day'].iloc[row]}/"
                        f"{f['month'].iloc[row]}/{f['year'].iloc[row]} is not a date; fix "
                        "the row or pass strict=False to skip bad rows")
    frame = pd.DataFrame({"user": f["userID"], "item": f["artistID"], "tag": f["tagID"],
                          "timestamp": when})[~bad]
    inter = Interactions.from_frame(frame, event_id="tag", source=str(path))
    inter.frame.attrs["skipped"] = int(bad.sum())
    return inter.frame, path


def _load_hetrec(d: Path, name: str, events: str, drop_duplicates: bool,
                 strict: bool) -> Dataset:
    if events not in ("tags", "listens"):
        raise ValueError(f"events must be 'tags' or 'listens', not {events!r}")
    listens = read_events(d / "user_artists.dat", format="tsv", user="userID", item="artistID",
                          timestamp=None, value="weight", strict=strict)
    info: dict = {"layout": "lastfm-hetrec", "events": events, "dropped": {}}
    if events == "listens":
        inter = listens
        info["events_file"] = "user_artists.dat"
    else:
        f, tagged = _tag_events(d, strict)
        info["events_file"] = tagged.name
        dup = f.duplicated(["user", "item", "timestamp"]).to_numpy()
        one = f[~dup].reset_index(drop=True) if drop_duplicates else f
        if drop_duplicates and dup.any():
            info["dropped"]["tag applications merged into one (user, artist, time) event"] = (
                int(dup.sum()))
        plays = listens.frame.drop_duplicates(["user", "item"])
        weight = plays.set_index(["user", "item"])["value"]
        key = pd.MultiIndex.from_arrays([one["user"], one["item"]])
        frame = pd.DataFrame({
            "user": one["user"], "item": one["item"], "timestamp": one["timestamp"],
            "event": "tag", "value": weight.reindex(key).to_numpy(dtype=np.float64),
        })
        inter = Interactions.from_frame(frame, event="event", value="value", source=str(tagged))
        inter.frame.attrs["skipped"] = f.attrs.get("skipped", 0)
        inter.frame.attrs["skipped_reasons"] = f.attrs.get("skipped_reasons", {})
    catalog = _hetrec_catalog(d)
    return Dataset.from_interactions(name, inter, catalog, **info)


def _hetrec_catalog(d: Path) -> Catalog | None:
    if not (d / "artists.dat").exists():
        return None
    artists = read_table(d / "artists.dat", ["id", "name", "url"], format="tsv",
                         quoting=False).frame
    cat = Catalog.from_frame(artists, item="id", title="name", source=str(d / "artists.dat"))
    cat.frame["url"] = artists["url"].fillna("").to_numpy()
    tagged, tags = d / TAGGED_MS, d / "tags.dat"
    if not tagged.exists():
        tagged = d / TAGGED_DAYS
    if tagged.exists() and tags.exists():
        names = read_table(tags, ["tagID", "tagValue"], format="tsv", encoding="latin-1",
                           quoting=False).frame
        names = pd.Series(names["tagValue"].to_numpy(), index=names["tagID"].to_numpy())
        applied = read_table(tagged, ["artistID", "tagID"], format="tsv").frame
        values = names.reindex(applied["tagID"].to_numpy())
        per_item = tags_per_item(applied["artistID"], values)
        attach_lists(cat.frame, "tags", per_item)
        attach_lists(cat.frame, "categories", per_item)  # interest labels read categories
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
